//! Robustness over the shared corpus of real-world mail (`../shared/corpus/email/`): every
//! message is parsed or quarantined with a reason, never a panic; labelled samples are
//! classified as labelled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use caseflow_core::EmailAddress;
use caseflow_ingest::{parse, thread_keys, Disposition, ParseConfig, QuarantineReason};
use std::path::{Path, PathBuf};

/// The corpus directory. It is required: a missing corpus fails the test rather than skipping.
fn corpus() -> PathBuf {
    let dir = std::env::var_os("CASEFLOW_EMAIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/email"));
    assert!(dir.is_dir(), "email corpus not found at {} (set CASEFLOW_EMAIL_CORPUS)", dir.display());
    dir
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "eml" || e == "txt") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// An independent, crude look for a sender: any `From:`/`Sender:` header line with a token that
/// is a valid address. Used to check that "no sender" quarantines are right.
fn crude_sender(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default().split("\n\n").next().unwrap_or_default();
    head.lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("from:") || l.starts_with("sender:")
        })
        .flat_map(|l| {
            l.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | ',' | '"' | '(' | ')'))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find(|t| t.contains('@') && EmailAddress::parse(t).is_ok())
}

#[test]
fn every_corpus_message_is_parsed_or_quarantined_with_a_reason() {
    let cfg = ParseConfig::default();
    let all = files(&corpus());
    assert!(all.len() >= 150, "expected the whole corpus, found {}", all.len());
    let (mut parsed, mut quarantined) = (0, 0);
    let mut why = Vec::new();
    for path in &all {
        let raw = std::fs::read(path).unwrap();
        match parse(&raw, &cfg) {
            Ok(e) => {
                parsed += 1;
                assert!(!e.dedup_key.is_empty(), "{}", path.display());
                if e.disposition == Disposition::Human {
                    assert!(e.from.is_some(), "a human message needs a sender: {}", path.display());
                }
                let _ = thread_keys(&e, &cfg);
            }
            Err(q) => {
                quarantined += 1;
                if q.reason == QuarantineReason::NoSender {
                    assert_eq!(crude_sender(&raw), None, "{}: a sender was there to be found", path.display());
                }
                why.push(format!(
                    "{}: {:?} {}",
                    path.strip_prefix(corpus()).unwrap_or(path).display(),
                    q.reason,
                    q.detail
                ));
                assert!(!q.detail.is_empty(), "{}", path.display());
                assert!(q.dedup_key.starts_with("sha256:") || q.dedup_key.starts_with("mid:"), "{}", path.display());
            }
        }
    }
    assert_eq!(parsed + quarantined, all.len());
    // Many parser fixtures in the corpus have no sender at all; those (and only those, checked
    // above) are quarantined. The real-world mail is all usable.
    assert!(parsed * 4 >= all.len() * 3, "parsed {parsed} of {}; quarantined:\n{}", all.len(), why.join("\n"));
    eprintln!("corpus: {parsed} parsed, {quarantined} quarantined:\n{}", why.join("\n"));
}

#[test]
fn every_labelled_bounce_is_a_bounce() {
    let cfg = ParseConfig::default();
    for path in files(&corpus().join("sisimai-set-of-emails/bounces")) {
        let e = parse(&std::fs::read(&path).unwrap(), &cfg).unwrap();
        assert!(matches!(e.disposition, Disposition::Bounce { .. }), "{}: {:?}", path.display(), e.disposition);
    }
}

#[test]
fn every_labelled_auto_reply_is_an_auto_reply() {
    let cfg = ParseConfig::default();
    for path in files(&corpus().join("sisimai-set-of-emails/autoreplies")) {
        let e = parse(&std::fs::read(&path).unwrap(), &cfg).unwrap();
        assert!(matches!(e.disposition, Disposition::AutoReply { .. }), "{}: {:?}", path.display(), e.disposition);
    }
}

#[test]
fn look_alikes_are_not_bounces() {
    let cfg = ParseConfig::default();
    for path in files(&corpus().join("sisimai-set-of-emails/not-bounce")) {
        let e = parse(&std::fs::read(&path).unwrap(), &cfg).unwrap();
        assert!(!matches!(e.disposition, Disposition::Bounce { .. }), "{}: {:?}", path.display(), e.disposition);
    }
}

#[test]
fn dsns_name_the_bounced_message_where_the_report_includes_it() {
    let cfg = ParseConfig::default();
    let mut with_ids = 0;
    let all = files(&corpus().join("sisimai-set-of-emails/bounces"));
    for path in &all {
        if let Disposition::Bounce { original_message_ids, .. } =
            parse(&std::fs::read(path).unwrap(), &cfg).unwrap().disposition
        {
            with_ids += usize::from(!original_message_ids.is_empty());
        }
    }
    // Most MTAs attach the original headers; a few send prose only.
    assert!(with_ids * 3 >= all.len() * 2, "only {with_ids} of {} bounces named a message", all.len());
}
