//! Caseflow's email adapters, the I/O half of the email channel: the IMAP poller that feeds
//! `App::receive_mailbox_batch`, and the SMTP sender the outbox dispatcher delivers through.
//! The pure half (MIME parsing, threading keys, reply composition) is `caseflow-ingest`.

pub mod imap;
pub mod smtp;
pub mod tls;

use caseflow_app::App;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Starts the email workers the settings ask for: one IMAP poller per configured mailbox and,
/// when `smtp.host` is set, the outbox dispatcher. They stop when `shutdown` turns true.
pub fn spawn_workers(app: &App, shutdown: watch::Receiver<bool>) -> Result<Vec<JoinHandle<()>>, smtp::SmtpConfigError> {
    let mut tasks = Vec::new();
    let settings = app.settings();
    if settings.smtp.enabled() {
        let sender = smtp::SmtpSender::new(&settings.smtp)?;
        let (app, rx) = (app.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move { app.run_email_dispatcher(sender, rx).await }));
    } else {
        tracing::info!("smtp.host is empty: outgoing mail stays queued in the outbox");
    }
    for m in &settings.email.mailboxes {
        let poller = imap::MailboxPoller::new(app.clone(), m.clone());
        tasks.push(tokio::spawn(poller.run(shutdown.clone())));
    }
    Ok(tasks)
}
