//! Caseflow's channel adapters, pure parts: turning raw inbound input into normalized messages.
//! Today: email (MIME parsing, normalization, quoted-text stripping, auto-reply / bounce /
//! loop detection, threading keys). No I/O, no clock, no global state: the IMAP poller and the
//! use cases that store the result live in `caseflow-app`.

pub mod email;
pub mod quote;

pub use email::{
    parse, subject_tag, thread_keys, Disposition, Mailbox, ParseConfig, ParsedAttachment, ParsedEmail, Quarantine,
    QuarantineReason, ThreadKeys,
};
