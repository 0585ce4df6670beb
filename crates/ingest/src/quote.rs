//! Finds where the new text of a reply ends: quoted history and signatures are cut so the
//! case shows what the customer just wrote. Heuristics from the common clients (Gmail, Outlook,
//! Apple Mail, Thunderbird) in English, German, French and Spanish; the full text is always kept
//! beside it.

/// Lines that introduce quoted history when they stand alone.
const SEPARATORS: [&str; 6] = [
    "-----original message-----",
    "-------- original message --------",
    "-------- ursprüngliche nachricht --------",
    "----- ursprüngliche nachricht -----",
    "-------- message original --------",
    "begin forwarded message:",
];

fn is_attribution(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    if !l.ends_with(':') {
        return false;
    }
    let verb = [" wrote", " schrieb", " a écrit", " escribió"].iter().any(|v| l.contains(v));
    verb && (l.starts_with("on ")
        || l.starts_with("am ")
        || l.starts_with("le ")
        || l.starts_with("el ")
        || l.contains('@'))
}

fn is_outlook_header_block(lines: &[&str], i: usize) -> bool {
    let first = lines[i].trim_start().to_lowercase();
    if !(first.starts_with("from:")
        || first.starts_with("von:")
        || first.starts_with("de :")
        || first.starts_with("de:"))
    {
        return false;
    }
    let next: Vec<String> = lines[i + 1..].iter().take(4).map(|l| l.trim_start().to_lowercase()).collect();
    let has = |p: &[&str]| next.iter().any(|l| p.iter().any(|x| l.starts_with(x)));
    has(&["sent:", "date:", "gesendet:", "envoyé :", "envoyé:"])
        && has(&["subject:", "betreff:", "objet :", "objet:", "to:", "an:"])
}

fn is_signature_start(line: &str) -> bool {
    let t = line.trim_end();
    t == "--" || t == "-- " || line == "-- " || {
        let l = t.trim().to_lowercase();
        l.starts_with("sent from my ") || l.starts_with("von meinem iphone") || l.starts_with("envoyé de mon ")
    }
}

/// The new text at the top of `text`: everything before quoted history or a signature.
/// Returns the whole (trimmed) text when cutting would leave nothing.
pub fn new_text(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let l = line.trim().to_lowercase();
        // An attribution may wrap over two lines: "On Mon, 1 Jan 2026 at 10:00, Jane Doe\n<jane@x.org> wrote:".
        let wrapped =
            i + 1 < lines.len() && l.starts_with("on ") && is_attribution(&format!("{} {}", line, lines[i + 1]));
        if SEPARATORS.contains(&l.as_str())
            || (l.starts_with("____") && l.chars().all(|c| c == '_') && l.len() >= 10)
            || is_attribution(line)
            || wrapped
            || is_outlook_header_block(&lines, i)
            || is_signature_start(line)
        {
            end = i;
            break;
        }
    }
    // Trailing `>` lines (bottom-posted quote with no attribution line).
    while end > 0 && (lines[end - 1].trim().is_empty() || lines[end - 1].trim_start().starts_with('>')) {
        end -= 1;
    }
    let out = lines[..end].join("\n").trim().to_owned();
    if out.is_empty() {
        text.trim().to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::new_text;

    #[test]
    fn gmail_attribution_and_quote_are_cut() {
        let t = "Thanks, that fixed it!\n\nOn Mon, 23 Nov 2026 at 10:02, Support <help@acme.test> wrote:\n> Please try again.\n";
        assert_eq!(new_text(t), "Thanks, that fixed it!");
    }

    #[test]
    fn wrapped_attribution_is_cut() {
        let t =
            "Still broken.\n\nOn Mon, 23 Nov 2026 at 10:02, Support Team\n<help@acme.test> wrote:\n> Please try again.";
        assert_eq!(new_text(t), "Still broken.");
    }

    #[test]
    fn outlook_header_block_and_separators_are_cut() {
        let t = "See attached.\n\nFrom: Support <help@acme.test>\nSent: Monday, November 23, 2026 10:02\nTo: Jane\nSubject: RE: [#1042] Invoice\n\nPlease send the invoice.";
        assert_eq!(new_text(t), "See attached.");
        let t = "Ja, bitte.\n\n-----Original Message-----\nFrom: x";
        assert_eq!(new_text(t), "Ja, bitte.");
        let t = "Merci !\n\nLe lun. 23 nov. 2026 à 10:02, Support <help@acme.test> a écrit :\n> Bonjour";
        assert_eq!(new_text(t), "Merci !");
        let t = "Danke.\n\nAm 23.11.2026 um 10:02 schrieb Support <help@acme.test>:\n> Hallo";
        assert_eq!(new_text(t), "Danke.");
    }

    #[test]
    fn signatures_are_cut_but_not_everything() {
        assert_eq!(new_text("Works now.\n-- \nJane Doe\nACME Corp"), "Works now.");
        assert_eq!(new_text("Works now.\n\nSent from my iPhone"), "Works now.");
        // A message that is nothing but a quote keeps its full text.
        assert_eq!(new_text("> only a quote"), "> only a quote");
        // Inline replies keep the text between quotes.
        assert_eq!(new_text("> question?\nanswer\n> more"), "> question?\nanswer");
    }
}
