//! Inbound email: raw RFC 5322 bytes → a normalized [`ParsedEmail`] or a [`Quarantine`]
//! verdict. Never panics on input; everything it cannot use is reported with a reason.

use caseflow_core::EmailAddress;
use chrono::{DateTime, Utc};
use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

/// What the parser needs to know about us.
#[derive(Debug, Clone)]
pub struct ParseConfig {
    /// Our support addresses (normalized); mail from them is our own looping back.
    pub our_addresses: Vec<String>,
    /// The domain of the Message-IDs we generate (`<...@domain>`).
    pub message_id_domain: String,
    /// A header we put on every message we send; seeing it inbound means a loop.
    pub loop_header: String,
    /// Subject tag prefix: with `#`, subjects carry `[#1042]`.
    pub subject_tag_prefix: String,
    /// Larger messages are quarantined whole.
    pub max_message_bytes: usize,
    /// Larger attachments are not stored (recorded as skipped).
    pub max_attachment_bytes: usize,
}

impl Default for ParseConfig {
    fn default() -> Self {
        Self {
            our_addresses: Vec::new(),
            message_id_domain: "caseflow.invalid".into(),
            loop_header: "X-Caseflow-Loop".into(),
            subject_tag_prefix: "#".into(),
            max_message_bytes: 25 * 1024 * 1024,
            max_attachment_bytes: 10 * 1024 * 1024,
        }
    }
}

/// What kind of message this is, decided before anything is created from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Written by a person: may create or continue a case.
    Human,
    /// An automatic reply (vacation, out of office, autoresponder): never a case, never
    /// acknowledged; recorded as a note on an open case it answers.
    AutoReply { reason: String },
    /// A delivery failure report; `original_message_ids` names the messages that bounced.
    Bounce { reason: String, original_message_ids: Vec<String> },
    /// Mailing-list or bulk mail.
    MailingList { reason: String },
    /// Our own mail coming back.
    OwnLoop { reason: String },
}

impl Disposition {
    /// A stable label for metrics and audit data.
    pub fn label(&self) -> &'static str {
        match self {
            Disposition::Human => "human",
            Disposition::AutoReply { .. } => "auto_reply",
            Disposition::Bounce { .. } => "bounce",
            Disposition::MailingList { .. } => "mailing_list",
            Disposition::OwnLoop { .. } => "own_loop",
        }
    }
}

/// A sender or recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub address: EmailAddress,
    pub name: Option<String>,
}

/// An attachment or inline image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAttachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
    /// `Content-ID` of an inline part (without angle brackets).
    pub inline_cid: Option<String>,
}

/// A normalized inbound email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEmail {
    /// `Message-ID` without angle brackets.
    pub message_id: Option<String>,
    /// Deduplication key: `mid:<Message-ID>`, or `sha256:<hash of the raw bytes>` without one.
    pub dedup_key: String,
    pub from: Option<Mailbox>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Decoded subject (RFC 2047), whitespace collapsed.
    pub subject: String,
    pub date: Option<DateTime<Utc>>,
    /// The whole text body (from the text part, or the HTML converted to text).
    pub text: String,
    /// What the sender just wrote: quoted history and signature removed.
    pub new_text: String,
    /// The HTML body, sanitized: safe to show to an agent.
    pub html: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub attachments: Vec<ParsedAttachment>,
    /// Attachments not kept because they exceed the size limit: (filename, size in bytes).
    pub oversized_attachments: Vec<(String, usize)>,
    pub disposition: Disposition,
}

/// Why a message could not be used; the caller stores it raw with this reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuarantineReason {
    /// Larger than `max_message_bytes`.
    TooLarge,
    /// Not recognisable as an email at all.
    Unparseable,
    /// A message that would create a case but has no usable `From` address.
    NoSender,
}

impl QuarantineReason {
    /// A stable label for metrics and the quarantine list.
    pub fn label(self) -> &'static str {
        match self {
            QuarantineReason::TooLarge => "too_large",
            QuarantineReason::Unparseable => "unparseable",
            QuarantineReason::NoSender => "no_sender",
        }
    }
}

/// The verdict for a message that cannot be processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    pub reason: QuarantineReason,
    pub detail: String,
    /// Deduplication key of the raw bytes, so a re-delivered bad message is stored once.
    pub dedup_key: String,
}

/// How a reply may be matched to an existing case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadKeys {
    /// Message-IDs of ours found in `In-Reply-To` and `References`, most specific first.
    pub our_message_ids: Vec<String>,
    /// The case number in a `[#1042]` subject tag.
    pub subject_number: Option<i64>,
}

/// The subject tag for a case number (`[#1042]`).
pub fn subject_tag(prefix: &str, number: i64) -> String {
    format!("[{prefix}{number}]")
}

fn no_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s
    }
}

fn raw_hash(raw: &[u8]) -> String {
    let digest = Sha256::digest(raw);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn clean_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty() && id.len() <= 998 && !id.chars().any(|c| c.is_whitespace() || c.is_control()))
        .then(|| id.to_owned())
}

fn id_list(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => t.split_whitespace().filter_map(clean_id).collect(),
        HeaderValue::TextList(list) => list.iter().filter_map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    }
}

fn mailbox(addr: Option<&Address<'_>>) -> Option<Mailbox> {
    let a = addr?.first()?;
    let address = EmailAddress::parse(a.address()?).ok()?;
    let name = a.name().map(|n| n.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|n| !n.is_empty());
    Some(Mailbox { address, name })
}

fn addresses(addr: Option<&Address<'_>>) -> Vec<String> {
    addr.map(|a| {
        a.iter().filter_map(|x| x.address()).filter_map(|x| EmailAddress::parse(x).ok()).map(String::from).collect()
    })
    .unwrap_or_default()
}

fn raw_header<'a>(msg: &'a mail_parser::Message<'_>, name: &str) -> Option<&'a str> {
    msg.headers_raw().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
}

fn sanitize_html(html: &str) -> String {
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto", "cid"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(html)
        .to_string()
}

const AUTO_SUBJECT_PREFIXES: [&str; 9] = [
    "automatic reply:",
    "auto reply:",
    "autoreply:",
    "auto-reply:",
    "out of office:",
    "out of the office",
    "abwesenheitsnotiz",
    "réponse automatique",
    "respuesta automática",
];

fn classify(
    msg: &mail_parser::Message<'_>,
    from: Option<&Mailbox>,
    message_id: Option<&str>,
    cfg: &ParseConfig,
) -> Disposition {
    // 1. Our own mail coming back.
    if raw_header(msg, &cfg.loop_header).is_some() {
        return Disposition::OwnLoop { reason: format!("carries our {} header", cfg.loop_header) };
    }
    if let Some(f) = from {
        if cfg.our_addresses.iter().any(|a| a == f.address.as_str()) {
            return Disposition::OwnLoop { reason: "sent from one of our support addresses".into() };
        }
    }
    if message_id.is_some_and(|id| id.to_lowercase().ends_with(&format!("@{}", cfg.message_id_domain.to_lowercase()))) {
        return Disposition::OwnLoop { reason: "has one of our Message-IDs".into() };
    }
    // 2. Delivery status notifications (RFC 3464) and feedback reports (RFC 5965).
    if let Some(ct) = msg.content_type() {
        if ct.ctype().eq_ignore_ascii_case("multipart")
            && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
        {
            let kind = ct.attribute("report-type").unwrap_or("unknown").to_lowercase();
            return Disposition::Bounce {
                reason: format!("multipart/report ({kind})"),
                original_message_ids: bounced_ids(msg),
            };
        }
    }
    if raw_header(msg, "X-Failed-Recipients").is_some() {
        return Disposition::Bounce { reason: "X-Failed-Recipients".into(), original_message_ids: bounced_ids(msg) };
    }
    // 3. Automatic replies (RFC 3834 and the vendor headers that predate it).
    if let Some(v) = raw_header(msg, "Auto-Submitted") {
        if !v.to_lowercase().starts_with("no") {
            return Disposition::AutoReply {
                reason: format!("Auto-Submitted: {}", v.chars().take(40).collect::<String>()),
            };
        }
    }
    for h in ["X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "X-Autogenerated"] {
        if raw_header(msg, h).is_some() {
            return Disposition::AutoReply { reason: h.into() };
        }
    }
    if raw_header(msg, "X-Apple-Action").is_some_and(|v| v.eq_ignore_ascii_case("vacation")) {
        return Disposition::AutoReply { reason: "X-Apple-Action: VACATION".into() };
    }
    if let Some(p) = raw_header(msg, "Precedence").map(str::to_lowercase) {
        match p.as_str() {
            "auto_reply" => return Disposition::AutoReply { reason: "Precedence: auto_reply".into() },
            "bulk" | "junk" | "list" => return Disposition::MailingList { reason: format!("Precedence: {p}") },
            _ => {}
        }
    }
    if raw_header(msg, "List-Id").is_some() || raw_header(msg, "List-Unsubscribe").is_some() {
        return Disposition::MailingList { reason: "List-Id / List-Unsubscribe".into() };
    }
    // 4. Bounces without a DSN structure: daemon senders and the null reverse path.
    let raw_from = raw_header(msg, "From").unwrap_or_default().to_lowercase();
    if raw_from.contains("mailer-daemon") || raw_from.trim_end().ends_with("<>") {
        return Disposition::Bounce {
            reason: "sent by the mailer daemon".into(),
            original_message_ids: bounced_ids(msg),
        };
    }
    if let Some(f) = from {
        let local = f.address.as_str().split('@').next().unwrap_or_default();
        if matches!(local, "mailer-daemon" | "postmaster" | "mail-daemon") {
            return Disposition::Bounce { reason: format!("sent by {local}"), original_message_ids: bounced_ids(msg) };
        }
    }
    if raw_header(msg, "Return-Path").is_some_and(|v| v.trim() == "<>") {
        return Disposition::Bounce { reason: "empty Return-Path".into(), original_message_ids: bounced_ids(msg) };
    }
    let subject = msg.subject().unwrap_or_default().trim().to_lowercase();
    if AUTO_SUBJECT_PREFIXES.iter().any(|p| subject.starts_with(p)) {
        return Disposition::AutoReply { reason: "automatic-reply subject".into() };
    }
    Disposition::Human
}

/// Message-IDs of the messages a bounce reports on: from attached original messages or
/// headers (`message/rfc822`, `text/rfc822-headers`) and from `In-Reply-To`.
fn bounced_ids(msg: &mail_parser::Message<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    for part in &msg.parts {
        if let Some(inner) = part.message() {
            if let Some(id) = inner.message_id().and_then(clean_id) {
                ids.push(id);
            }
        }
        let is_headers = part
            .content_type()
            .is_some_and(|ct| ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers")));
        if is_headers {
            let text = String::from_utf8_lossy(part.contents());
            for line in text.lines() {
                if let Some((name, value)) = line.split_once(':') {
                    if name.trim().eq_ignore_ascii_case("message-id") {
                        ids.extend(clean_id(value));
                    }
                }
            }
        }
    }
    // Many MTAs quote the original headers as plain text: look for Message-ID lines in the body.
    if ids.is_empty() {
        let body_start = usize::try_from(msg.root_part().raw_body_offset()).unwrap_or(0);
        let body = msg.raw_message().get(body_start..).unwrap_or_default();
        let own = msg.message_id().and_then(clean_id);
        for line in String::from_utf8_lossy(body).lines() {
            if let Some((name, value)) = line.trim_start().split_once(':') {
                if name.trim().eq_ignore_ascii_case("message-id") {
                    if let Some(id) = clean_id(value).filter(|id| Some(id) != own.as_ref()) {
                        ids.push(id);
                    }
                }
            }
        }
    }
    ids.extend(id_list(msg.in_reply_to()));
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    ids
}

/// Parses and classifies one raw message.
pub fn parse(raw: &[u8], cfg: &ParseConfig) -> Result<ParsedEmail, Quarantine> {
    if raw.len() > cfg.max_message_bytes {
        return Err(Quarantine {
            reason: QuarantineReason::TooLarge,
            detail: format!("{} bytes; the limit is {}", raw.len(), cfg.max_message_bytes),
            dedup_key: raw_hash(raw),
        });
    }
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Err(Quarantine {
            reason: QuarantineReason::Unparseable,
            detail: "no RFC 5322 header section found".into(),
            dedup_key: raw_hash(raw),
        });
    };
    if msg.headers().is_empty() {
        return Err(Quarantine {
            reason: QuarantineReason::Unparseable,
            detail: "no headers".into(),
            dedup_key: raw_hash(raw),
        });
    }
    let message_id = msg.message_id().and_then(clean_id);
    let dedup_key = message_id.as_ref().map(|m| format!("mid:{m}")).unwrap_or_else(|| raw_hash(raw));
    let from = mailbox(msg.from()).or_else(|| mailbox(msg.sender()));
    let disposition = classify(&msg, from.as_ref(), message_id.as_deref(), cfg);
    if from.is_none() && disposition == Disposition::Human {
        return Err(Quarantine {
            reason: QuarantineReason::NoSender,
            detail: "no valid address in From or Sender".into(),
            dedup_key,
        });
    }
    let subject = msg.subject().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    let text = msg.body_text(0).map(|t| t.replace("\r\n", "\n")).unwrap_or_default();
    let html = (msg.html_body_count() > 0)
        .then(|| msg.html_part(0))
        .flatten()
        .filter(|p| p.is_text_html())
        .and_then(|p| p.text_contents())
        .map(sanitize_html);
    let mut attachments = Vec::new();
    let mut oversized_attachments = Vec::new();
    for part in msg.attachments() {
        let content = part.contents();
        let filename = part.attachment_name().map(str::to_owned).unwrap_or_else(|| "attachment".into());
        if content.len() > cfg.max_attachment_bytes {
            oversized_attachments.push((filename, content.len()));
            continue;
        }
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(s) => format!("{}/{}", ct.ctype(), s),
                None => ct.ctype().to_owned(),
            })
            .unwrap_or_else(|| "application/octet-stream".into())
            .to_lowercase();
        let inline_cid = part.content_id().and_then(clean_id);
        attachments.push(ParsedAttachment { filename, content_type, content: content.to_vec(), inline_cid });
    }
    let date = msg.date().and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0));
    // NUL (e.g. `=00` in quoted-printable) is valid in a MIME body but not in a database text
    // column (PostgreSQL refuses it): no decoded string leaves the parser with one.
    let text = no_nul(text);
    let html = html.map(no_nul);
    let subject = no_nul(subject);
    let from = from.map(|m| Mailbox { name: m.name.map(no_nul), ..m });
    for a in &mut attachments {
        a.filename = no_nul(std::mem::take(&mut a.filename));
        a.content_type = no_nul(std::mem::take(&mut a.content_type));
    }
    Ok(ParsedEmail {
        new_text: crate::quote::new_text(&text),
        text,
        html,
        in_reply_to: id_list(msg.in_reply_to()),
        references: id_list(msg.references()),
        to: addresses(msg.to()),
        cc: addresses(msg.cc()),
        subject,
        date,
        from,
        message_id,
        dedup_key,
        attachments,
        oversized_attachments,
        disposition,
    })
}

/// The keys by which `email` may continue an existing case.
pub fn thread_keys(email: &ParsedEmail, cfg: &ParseConfig) -> ThreadKeys {
    let suffix = format!("@{}", cfg.message_id_domain.to_lowercase());
    let mut ours: Vec<String> = Vec::new();
    for id in email.in_reply_to.iter().chain(email.references.iter().rev()) {
        if id.to_lowercase().ends_with(&suffix) && !ours.contains(id) {
            ours.push(id.clone());
        }
    }
    ThreadKeys { our_message_ids: ours, subject_number: subject_number(&email.subject, &cfg.subject_tag_prefix) }
}

/// Finds `[<prefix><digits>]` in a subject.
fn subject_number(subject: &str, prefix: &str) -> Option<i64> {
    let open = format!("[{prefix}");
    let mut rest = subject;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && after[digits.len()..].starts_with(']') {
            if let Ok(n) = digits.parse::<i64>() {
                return Some(n);
            }
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ParseConfig {
        ParseConfig {
            our_addresses: vec!["support@acme.test".into()],
            message_id_domain: "mail.acme.test".into(),
            ..ParseConfig::default()
        }
    }

    fn mail(headers: &str, body: &str) -> Vec<u8> {
        format!("{headers}\r\n\r\n{body}").replace("\n", "\r\n").replace("\r\r\n", "\r\n").into_bytes()
    }

    #[test]
    fn nul_bytes_never_leave_the_parser() {
        let raw = mail(
            "From: =?UTF-8?Q?Ann=00_B?= <ann@example.org>\nTo: support@acme.test\nSubject: =?UTF-8?Q?a=00b?=\nMessage-ID: <x=00y@example.org>\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable",
            "<p>one=00two</p>",
        );
        let e = parse(&raw, &cfg()).unwrap();
        assert_eq!(e.subject, "ab");
        assert!(!e.text.contains('\0') && !e.new_text.contains('\0'), "{:?}", e.text);
        assert!(e.text.contains("onetwo"), "{:?}", e.text);
        assert!(!e.html.as_deref().unwrap_or_default().contains('\0'));
        assert!(!e.from.unwrap().name.unwrap_or_default().contains('\0'));
        assert!(!e.dedup_key.contains('\0'));
    }

    #[test]
    fn a_plain_human_message_is_normalized() {
        let raw = mail(
            "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <Juergen@Example.DE>\nTo: support@acme.test\nSubject: =?UTF-8?B?UHJvYmxlbSBtaXQgUmVjaG51bmc=?=\nMessage-ID: <abc@example.de>\nDate: Mon, 23 Nov 2026 10:00:00 +0100",
            "Hallo,\ndie Rechnung ist falsch.\n\nAm 22.11.2026 um 09:00 schrieb Support <support@acme.test>:\n> Alt",
        );
        let e = parse(&raw, &cfg()).unwrap();
        assert_eq!(e.disposition, Disposition::Human);
        let from = e.from.unwrap();
        assert_eq!(from.address.as_str(), "juergen@example.de");
        assert_eq!(from.name.as_deref(), Some("Jürgen Müller"));
        assert_eq!(e.subject, "Problem mit Rechnung");
        assert_eq!(e.message_id.as_deref(), Some("abc@example.de"));
        assert_eq!(e.dedup_key, "mid:abc@example.de");
        assert_eq!(e.new_text, "Hallo,\ndie Rechnung ist falsch.");
        assert!(e.text.contains("> Alt"));
        assert_eq!(e.date.unwrap().to_rfc3339(), "2026-11-23T09:00:00+00:00");
    }

    #[test]
    fn html_is_sanitized() {
        let raw = mail(
            "From: a@example.org\nSubject: x\nContent-Type: text/html; charset=utf-8",
            "<p onclick=\"steal()\">Hi<script>alert(1)</script><a href=\"javascript:evil()\">x</a><img src=\"cid:logo\"></p>",
        );
        let e = parse(&raw, &cfg()).unwrap();
        let html = e.html.unwrap();
        assert!(!html.contains("script") && !html.contains("onclick") && !html.contains("javascript"), "{html}");
        assert!(html.contains("cid:logo"), "{html}");
        assert!(e.text.contains("Hi"));
    }

    #[test]
    fn loops_auto_replies_lists_and_bounces_are_recognised() {
        let c = cfg();
        let kind = |h: &str| parse(&mail(h, "text"), &c).unwrap().disposition.label();
        assert_eq!(kind("From: support@acme.test\nSubject: x"), "own_loop");
        assert_eq!(kind("From: a@example.org\nX-Caseflow-Loop: 1\nSubject: x"), "own_loop");
        assert_eq!(kind("From: a@example.org\nMessage-ID: <1.2@mail.acme.test>\nSubject: x"), "own_loop");
        assert_eq!(kind("From: a@example.org\nAuto-Submitted: auto-replied\nSubject: x"), "auto_reply");
        assert_eq!(kind("From: a@example.org\nAuto-Submitted: no\nSubject: x"), "human");
        assert_eq!(kind("From: a@example.org\nX-Autoreply: yes\nSubject: x"), "auto_reply");
        assert_eq!(kind("From: a@example.org\nPrecedence: bulk\nSubject: x"), "mailing_list");
        assert_eq!(kind("From: a@example.org\nList-Id: <dev.lists.example.org>\nSubject: x"), "mailing_list");
        assert_eq!(kind("From: MAILER-DAEMON@mx.example.org\nSubject: Undelivered Mail"), "bounce");
        assert_eq!(kind("From: a@example.org\nReturn-Path: <>\nSubject: x"), "bounce");
        assert_eq!(kind("From: a@example.org\nSubject: Automatic reply: your case"), "auto_reply");
        assert_eq!(kind("From: a@example.org\nSubject: Re: automatic replies are annoying"), "human");
    }

    #[test]
    fn a_dsn_names_the_message_that_bounced() {
        let raw = mail(
            "From: MAILER-DAEMON@mx.example.org\nSubject: Undelivered\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"",
            "--b\nContent-Type: text/plain\n\nCould not deliver.\n--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; x@example.org\nAction: failed\nStatus: 5.1.1\n--b\nContent-Type: text/rfc822-headers\n\nFrom: support@acme.test\nMessage-ID: <case.42.7@mail.acme.test>\nSubject: [#42] Re: help\n--b--\n",
        );
        match parse(&raw, &cfg()).unwrap().disposition {
            Disposition::Bounce { original_message_ids, reason } => {
                assert!(reason.contains("delivery-status"), "{reason}");
                assert_eq!(original_message_ids, vec!["case.42.7@mail.acme.test".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn threading_keys_come_from_our_ids_and_the_subject_tag() {
        let raw = mail(
            "From: a@example.org\nSubject: Re: [#1042] Invoice\nIn-Reply-To: <c.1042.3@mail.acme.test>\nReferences: <other@gmail.example> <c.1042.1@mail.acme.test> <c.1042.3@mail.acme.test>",
            "ok",
        );
        let e = parse(&raw, &cfg()).unwrap();
        let k = thread_keys(&e, &cfg());
        assert_eq!(k.our_message_ids, vec!["c.1042.3@mail.acme.test".to_owned(), "c.1042.1@mail.acme.test".to_owned()]);
        assert_eq!(k.subject_number, Some(1042));
        assert_eq!(subject_number("[#12a] [#7]", "#"), Some(7));
        assert_eq!(subject_number("no tag [#] here", "#"), None);
        assert_eq!(subject_number("[Case-9]", "Case-"), Some(9));
        assert_eq!(subject_tag("#", 1042), "[#1042]");
    }

    #[test]
    fn unusable_input_is_quarantined_with_a_reason() {
        let c = ParseConfig { max_message_bytes: 100, ..cfg() };
        assert_eq!(parse(&[b'x'; 101], &c).unwrap_err().reason, QuarantineReason::TooLarge);
        assert_eq!(parse(b"", &cfg()).unwrap_err().reason, QuarantineReason::Unparseable);
        let no_from = parse(&mail("Subject: hi", "text"), &cfg()).unwrap_err();
        assert_eq!(no_from.reason, QuarantineReason::NoSender);
        assert!(no_from.dedup_key.starts_with("sha256:"));
        let bad_from = parse(&mail("From: not an address\nSubject: hi", "text"), &cfg()).unwrap_err();
        assert_eq!(bad_from.reason, QuarantineReason::NoSender);
    }

    #[test]
    fn attachments_respect_the_size_limit() {
        let raw = mail(
            "From: a@example.org\nSubject: files\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"",
            "--b\nContent-Type: text/plain\n\nsee files\n--b\nContent-Type: application/pdf; name=\"small.pdf\"\nContent-Disposition: attachment; filename=\"small.pdf\"\n\n12345\n--b\nContent-Type: application/zip\nContent-Disposition: attachment; filename=\"big.zip\"\n\n0123456789012345678901234567890123456789\n--b--\n",
        );
        let e = parse(&raw, &ParseConfig { max_attachment_bytes: 20, ..cfg() }).unwrap();
        assert_eq!(e.attachments.len(), 1);
        assert_eq!(e.attachments[0].filename, "small.pdf");
        assert_eq!(e.attachments[0].content_type, "application/pdf");
        assert_eq!(e.oversized_attachments.len(), 1);
        assert_eq!(e.oversized_attachments[0].0, "big.zip");
    }
}
