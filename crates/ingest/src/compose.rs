//! Pure pieces of outgoing email: the reply subject with its case tag, the `References` chain,
//! and the HTML alternative of a plain-text body. The SMTP adapter turns these into MIME.

use crate::email::subject_tag;

/// How many Message-IDs a `References` header keeps (RFC 5322 suggests trimming long chains;
/// the first and the most recent ones matter for threading).
pub const MAX_REFERENCES: usize = 20;

/// `Re: <subject> [#1042]`: one `Re:`, the case tag once, no line breaks.
pub fn reply_subject(case_subject: &str, tag_prefix: &str, number: i64) -> String {
    let one_line: String =
        case_subject.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    let mut base = one_line.trim();
    loop {
        let lower = base.to_ascii_lowercase();
        let stripped = ["re:", "aw:", "sv:", "fw:", "fwd:", "wg:"]
            .iter()
            .find(|p| lower.starts_with(*p))
            .map(|p| base[p.len()..].trim_start());
        match stripped {
            Some(rest) => base = rest,
            None => break,
        }
    }
    let tag = subject_tag(tag_prefix, number);
    let base = if base.is_empty() { "Your request" } else { base };
    if base.contains(&tag) {
        format!("Re: {base}")
    } else {
        format!("Re: {base} {tag}")
    }
}

/// The `References` of a reply to a message with `parent_references` and `parent_id`: the
/// parent's chain plus the parent, without duplicates, trimmed to [`MAX_REFERENCES`] by
/// keeping the first id and the most recent ones.
pub fn references(parent_references: &[String], parent_id: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in parent_references.iter().map(String::as_str).chain(parent_id) {
        if !id.is_empty() && !out.iter().any(|o| o == id) {
            out.push(id.to_owned());
        }
    }
    if out.len() > MAX_REFERENCES {
        let tail = out.split_off(out.len() - (MAX_REFERENCES - 1));
        out.truncate(1);
        out.extend(tail);
    }
    out
}

/// The HTML alternative of a plain-text body: escaped, paragraphs on blank lines, `<br>` on
/// single line breaks. Nothing from the text can become markup.
pub fn text_to_html(text: &str) -> String {
    let mut html = String::from("<!DOCTYPE html><html><body>");
    let normalized = text.replace("\r\n", "\n");
    for para in normalized.split("\n\n").map(|p| p.trim_matches('\n')).filter(|p| !p.trim().is_empty()) {
        html.push_str("<p>");
        for (i, line) in para.split('\n').enumerate() {
            if i > 0 {
                html.push_str("<br>");
            }
            caseflow_core::html::escape_into(line, &mut html);
        }
        html.push_str("</p>");
    }
    html.push_str("</body></html>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subject_has_one_re_and_one_tag() {
        assert_eq!(reply_subject("Printer on fire", "#", 1042), "Re: Printer on fire [#1042]");
        assert_eq!(reply_subject("RE: Aw: printer", "#", 7), "Re: printer [#7]");
        assert_eq!(reply_subject("Re: printer [#7]", "#", 7), "Re: printer [#7]");
        assert_eq!(reply_subject("", "#", 7), "Re: Your request [#7]");
        assert_eq!(reply_subject("two\r\nlines", "CF-", 9), "Re: two lines [CF-9]");
    }

    #[test]
    fn references_append_the_parent_once_and_stay_short() {
        let r = references(&["a@x".into(), "b@x".into()], Some("c@x"));
        assert_eq!(r, vec!["a@x", "b@x", "c@x"]);
        assert_eq!(references(&["a@x".into()], Some("a@x")), vec!["a@x"]);
        assert!(references(&[], None).is_empty());
        let long: Vec<String> = (0..50).map(|i| format!("{i}@x")).collect();
        let r = references(&long, Some("new@x"));
        assert_eq!(r.len(), MAX_REFERENCES);
        assert_eq!(r[0], "0@x");
        assert_eq!(r.last().map(String::as_str), Some("new@x"));
        // 51 ids: the first, then the newest 19 (32..=49 and the new one).
        assert_eq!(r[1], "32@x");
    }

    #[test]
    fn html_alternative_escapes_everything() {
        let h = text_to_html("Hi <b>Ann</b> & co,\n\nline one\nline \"two\"\n\n\n");
        assert_eq!(
            h,
            "<!DOCTYPE html><html><body><p>Hi &lt;b&gt;Ann&lt;/b&gt; &amp; co,</p>\
             <p>line one<br>line &quot;two&quot;</p></body></html>"
        );
    }
}
