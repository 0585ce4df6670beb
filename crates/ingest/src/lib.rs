//! Caseflow's channel adapters, pure parts: turning raw inbound input into normalized messages.
//! Today: email (MIME parsing, normalization, quoted-text stripping, auto-reply / bounce /
//! loop detection, threading keys) and the pure parts of outgoing mail (reply subject,
//! references, HTML alternative). No I/O, no clock, no global state: the use cases live in
//! `caseflow-app`, the IMAP and SMTP adapters in `caseflow-mail`.

pub mod compose;
pub mod email;
pub mod quote;

pub use email::{
    parse, subject_tag, thread_keys, Disposition, Mailbox, ParseConfig, ParsedAttachment, ParsedEmail, Quarantine,
    QuarantineReason, ThreadKeys,
};
