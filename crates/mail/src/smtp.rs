//! The SMTP sender behind the outbox: encodes an [`OutgoingEmail`] as MIME (multipart
//! text + HTML, our Message-ID, threading headers, `Auto-Submitted`, our loop header) and hands
//! it to the configured relay with lettre. SMTP replies are classified: 5xx is permanent,
//! everything else (4xx, refused connection, timeout, TLS trouble) is retried by the outbox.

use crate::tls::read_pem;
use caseflow_app::outbox::{EmailSender, OutgoingEmail, SendError};
use caseflow_app::settings::{SmtpSettings, TlsMode};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Why the SMTP settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("smtp: {0}")]
pub struct SmtpConfigError(String);

/// Sends mail through one SMTP relay (pooled connections).
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpSender")
    }
}

impl SmtpSender {
    /// Builds the transport from settings (no connection is made until the first send).
    pub fn new(s: &SmtpSettings) -> Result<Self, SmtpConfigError> {
        let err = |e: &dyn std::fmt::Display| SmtpConfigError(e.to_string());
        let tls_params = || -> Result<TlsParameters, SmtpConfigError> {
            let mut b = TlsParameters::builder(s.host.clone());
            if !s.ca_file.is_empty() {
                let pem = read_pem(&s.ca_file).map_err(|e| SmtpConfigError(e.to_string()))?;
                b = b.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| err(&e))?);
            }
            b.build_rustls().map_err(|e| err(&e))
        };
        let tls = match s.tls {
            TlsMode::Implicit => Tls::Wrapper(tls_params()?),
            TlsMode::Starttls => Tls::Required(tls_params()?),
            TlsMode::Plain => Tls::None,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
            .port(s.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(s.timeout_secs)))
            .pool_config(PoolConfig::new().max_size(4).idle_timeout(Duration::from_secs(60)));
        if !s.username.is_empty() {
            b = b.credentials(Credentials::new(s.username.clone(), s.password.expose().to_owned()));
        }
        Ok(Self { transport: b.build() })
    }
}

fn angle(id: &str) -> String {
    format!("<{id}>")
}

fn mailbox(name: &str, address: &str) -> Result<Mailbox, SendError> {
    let addr = address
        .parse()
        .map_err(|_| SendError::Permanent("the recipient or sender address is not valid for SMTP".into()))?;
    Ok(Mailbox::new((!name.is_empty()).then(|| name.to_owned()), addr))
}

/// Encodes the message. Pure, so it is unit-tested without a server.
pub fn encode(mail: &OutgoingEmail) -> Result<Message, SendError> {
    let mut b = Message::builder()
        .from(mailbox(&mail.from_name, &mail.from_address)?)
        .to(mailbox(&mail.to_name, &mail.to_address)?)
        .subject(mail.subject.clone())
        .message_id(Some(angle(&mail.message_id_header)))
        .date_now();
    if let Some(parent) = &mail.in_reply_to {
        b = b.in_reply_to(angle(parent));
    }
    if !mail.references.is_empty() {
        b = b.references(mail.references.iter().map(|r| angle(r)).collect::<Vec<_>>().join(" "));
    }
    let header = |name: &str, value: String| -> Result<HeaderValue, SendError> {
        let n = HeaderName::new_from_ascii(name.to_owned())
            .map_err(|_| SendError::Permanent(format!("invalid header name {name}")))?;
        Ok(HeaderValue::new(n, value))
    };
    if mail.auto_submitted {
        b = b.raw_header(header("Auto-Submitted", "auto-replied".into())?);
        // Ask well-behaved responders (Exchange, RFC 3834 agents) not to answer automatically.
        b = b.raw_header(header("X-Auto-Response-Suppress", "All".into())?);
    }
    b = b.raw_header(header(&mail.loop_header.0, mail.loop_header.1.clone())?);
    b.multipart(
        MultiPart::alternative()
            .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.text.clone()))
            .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(mail.html.clone())),
    )
    .map_err(|e| SendError::Permanent(format!("cannot encode the message: {e}")))
}

/// Describes an SMTP failure for the agent (stored on the message, not logged: the server's
/// reply may name the recipient). Logs carry only the status code.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    match e.status() {
        Some(code) => format!("SMTP {code}: {e}"),
        None if e.is_timeout() => "SMTP timeout".into(),
        None if e.is_tls() => format!("SMTP TLS failure: {e}"),
        None => format!("SMTP connection failure: {e}"),
    }
}

/// 5xx replies that say our relay settings are wrong (authentication required or refused,
/// encryption required), not that this message can never be delivered: the outbox keeps
/// retrying until an operator fixes the configuration, instead of failing every reply.
fn is_relay_configuration(e: &lettre::transport::smtp::Error) -> bool {
    e.status().is_some_and(|c| matches!(c.to_string().as_str(), "530" | "534" | "535" | "538"))
}

impl EmailSender for SmtpSender {
    async fn send(&self, mail: &OutgoingEmail) -> Result<(), SendError> {
        let msg = encode(mail)?;
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() && !is_relay_configuration(&e) => {
                tracing::warn!(outbox.id = %mail.outbox_id, status = ?e.status().map(|c| c.to_string()), "SMTP refused the message for good");
                Err(SendError::Permanent(describe(&e)))
            }
            Err(e) => {
                tracing::warn!(outbox.id = %mail.outbox_id, status = ?e.status().map(|c| c.to_string()), "SMTP delivery failed; will retry");
                Err(SendError::Temporary(describe(&e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OutgoingEmail {
        OutgoingEmail {
            outbox_id: "o1".into(),
            message_id: "m1".into(),
            from_name: "Ann (Acme Support)".into(),
            from_address: "support@acme.test".into(),
            to_name: "Bob".into(),
            to_address: "bob@example.org".into(),
            subject: "Re: Ünïcode printer [#1042]".into(),
            message_id_header: "caseflow.m1@acme.test".into(),
            in_reply_to: Some("abc@mail.example.org".into()),
            references: vec!["first@x".into(), "abc@mail.example.org".into()],
            text: "Hello Bob,\n\nfixed.".into(),
            html: "<p>Hello Bob,</p><p>fixed.</p>".into(),
            auto_submitted: true,
            loop_header: ("X-Caseflow-Loop".into(), "acme.test".into()),
        }
    }

    #[test]
    fn encodes_threading_loop_and_auto_submitted_headers_with_both_bodies() {
        let raw = String::from_utf8(encode(&sample()).unwrap().formatted()).unwrap();
        assert!(raw.contains("Message-ID: <caseflow.m1@acme.test>\r\n"), "{raw}");
        assert!(raw.contains("In-Reply-To: <abc@mail.example.org>\r\n"), "{raw}");
        assert!(raw.contains("References: <first@x> <abc@mail.example.org>\r\n"), "{raw}");
        assert!(raw.contains("Auto-Submitted: auto-replied\r\n"), "{raw}");
        assert!(raw.contains("X-Caseflow-Loop: acme.test\r\n"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain") && raw.contains("text/html"), "{raw}");
        // The non-ASCII subject is encoded, and a MIME parser gets the original back.
        let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
        assert_eq!(parsed.subject(), Some("Re: Ünïcode printer [#1042]"));
        // Line ends travel as CRLF.
        let text = parsed.body_text(0).map(|t| t.replace("\r\n", "\n"));
        assert_eq!(text.as_deref().map(str::trim_end), Some("Hello Bob,\n\nfixed."));
    }

    #[test]
    fn human_replies_are_not_marked_automatic() {
        let mut m = sample();
        m.auto_submitted = false;
        m.in_reply_to = None;
        m.references.clear();
        let raw = String::from_utf8(encode(&m).unwrap().formatted()).unwrap();
        assert!(!raw.contains("Auto-Submitted"), "{raw}");
        assert!(!raw.contains("In-Reply-To"), "{raw}");
        assert!(raw.contains("X-Caseflow-Loop"), "{raw}");
    }

    #[test]
    fn a_bad_address_is_a_permanent_failure() {
        let mut m = sample();
        m.to_address = "not an address".into();
        assert!(matches!(encode(&m), Err(SendError::Permanent(_))));
    }
}
