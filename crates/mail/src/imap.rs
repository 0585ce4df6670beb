//! The IMAP poller: one task per configured mailbox.
//!
//! Per connection: connect (implicit TLS, STARTTLS or plain to loopback), log in, SELECT the
//! folder, compare its UIDVALIDITY with the stored position, then repeat: search for UIDs above
//! the last committed one, fetch a batch with `BODY.PEEK[]` (which leaves `\Seen` alone), hand it
//! to [`App::receive_mailbox_batch`] (one transaction, which also stores the new position),
//! and only then flag the batch `\Seen` (or move it). When nothing is left: IDLE if the server
//! offers it, else sleep for the poll interval. Any failure drops the connection and reconnects
//! with exponential backoff.
//!
//! Why nothing is lost or doubled: a message is acknowledged to the server only after its
//! transaction committed; a crash between commit and flag leaves it unflagged but below the
//! stored UID, and the next start flags (or moves) such messages without ingesting them again;
//! if UIDVALIDITY changes, the folder is read again and the dedup ledger (Message-ID or content
//! hash) recognises what was already received.

use crate::tls::{connector, server_name, MailStream, TlsConfigError};
use async_imap::{Client, Session};
use caseflow_app::inbound::FetchedMail;
use caseflow_app::settings::{MailboxSettings, Processed, TlsMode};
use caseflow_app::{App, AppError};
use futures_util::TryStreamExt;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;

type ImapSession = Session<MailStream>;

/// Longest time one IMAP command (or connect) may take before the connection is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// IDLE is renewed at least this often (RFC 2177 asks for less than 29 minutes).
const MAX_IDLE: Duration = Duration::from_secs(25 * 60);

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("imap: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("tls: {0}")]
    Tls(#[from] TlsConfigError),
    #[error("storing the batch failed: {0} ({code})", code = .0.code())]
    App(#[from] AppError),
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("{0}")]
    Protocol(String),
}

async fn timed<T, E: Into<PollError>>(
    what: &'static str,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, PollError> {
    match tokio::time::timeout(IO_TIMEOUT, f).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(PollError::Timeout(what)),
    }
}

async fn greet(client: &mut Client<MailStream>) -> Result<(), PollError> {
    match timed("greeting", client.read_response()).await? {
        Some(_) => Ok(()),
        None => Err(PollError::Protocol("the server closed the connection before its greeting".into())),
    }
}

/// Connects and logs in.
pub async fn connect(cfg: &MailboxSettings) -> Result<ImapSession, PollError> {
    let tcp = timed("connect", TcpStream::connect((cfg.host.as_str(), cfg.port))).await?;
    tcp.set_nodelay(true)?;
    let client = match cfg.tls {
        TlsMode::Plain => {
            let mut c = Client::new(MailStream::Plain(tcp));
            greet(&mut c).await?;
            c
        }
        TlsMode::Implicit => {
            let tls = timed("tls handshake", connector(&cfg.ca_file)?.connect(server_name(&cfg.host)?, tcp)).await?;
            let mut c = Client::new(MailStream::Tls(Box::new(tls)));
            greet(&mut c).await?;
            c
        }
        TlsMode::Starttls => {
            let mut c = Client::new(MailStream::Plain(tcp));
            greet(&mut c).await?;
            timed("STARTTLS", c.run_command_and_check_ok("STARTTLS", None)).await?;
            let MailStream::Plain(tcp) = c.into_inner() else {
                return Err(PollError::Protocol("unexpected stream state after STARTTLS".into()));
            };
            let tls = timed("tls handshake", connector(&cfg.ca_file)?.connect(server_name(&cfg.host)?, tcp)).await?;
            Client::new(MailStream::Tls(Box::new(tls)))
        }
    };
    let password = cfg.password();
    match tokio::time::timeout(IO_TIMEOUT, client.login(&cfg.username, password.expose())).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err((e, _))) => Err(e.into()),
        Err(_) => Err(PollError::Timeout("login")),
    }
}

/// A compact IMAP sequence set (`1:3,7,9:10`) for sorted UIDs.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// Splits sorted UIDs into batches of at most `max_n` messages and, where possible,
/// `max_bytes` bytes (a message larger than that is a batch of its own). Unknown sizes count
/// as 1 MiB.
pub fn chunk_by_size(
    uids: &[u32],
    sizes: &std::collections::HashMap<u32, u32>,
    max_n: usize,
    max_bytes: u64,
) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = Vec::new();
    let mut cur: Vec<u32> = Vec::new();
    let mut bytes = 0u64;
    for &u in uids {
        let size = u64::from(sizes.get(&u).copied().unwrap_or(1 << 20));
        if !cur.is_empty() && (cur.len() >= max_n.max(1) || bytes + size > max_bytes) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.push(u);
        bytes += size;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The poller of one mailbox.
pub struct MailboxPoller {
    app: App,
    cfg: MailboxSettings,
}

impl std::fmt::Debug for MailboxPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxPoller").field("mailbox", &self.cfg.name).finish()
    }
}

impl MailboxPoller {
    pub fn new(app: App, cfg: MailboxSettings) -> Self {
        Self { app, cfg }
    }

    fn set_connected(&self, up: bool) {
        self.app.metrics().imap_connected.with_label_values(&[self.cfg.name.as_str()]).set(i64::from(up));
    }

    /// Runs until `shutdown` turns true, reconnecting with backoff (1 s doubling to 60 s).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let name = self.cfg.name.clone();
        let mut delay = Duration::from_secs(1);
        loop {
            if *shutdown.borrow() {
                break;
            }
            let mut healthy = false;
            match self.session(&mut shutdown, &mut healthy).await {
                Ok(()) => break,
                Err(e) => {
                    self.set_connected(false);
                    self.app.metrics().imap_errors.with_label_values(&[name.as_str()]).inc();
                    if healthy {
                        delay = Duration::from_secs(1);
                    }
                    tracing::warn!(mailbox = %name, error = %e, retry_in_ms = delay.as_millis() as u64, "IMAP session ended; reconnecting");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => {}
            }
            delay = (delay * 2).min(Duration::from_secs(60));
        }
        self.set_connected(false);
        tracing::info!(mailbox = %name, "IMAP poller stopped");
    }

    /// One connection's life. Returns Ok on shutdown. Sets `healthy` once the folder is open,
    /// so that the backoff starts again from its minimum after a good session.
    async fn session(&self, shutdown: &mut watch::Receiver<bool>, healthy: &mut bool) -> Result<(), PollError> {
        let cfg = &self.cfg;
        let mut s = connect(cfg).await?;
        let caps = timed("CAPABILITY", s.capabilities()).await?;
        let can_idle = cfg.idle && caps.has_str("IDLE");
        let can = Caps { mv: caps.has_str("MOVE"), uidplus: caps.has_str("UIDPLUS") };
        let folder = timed("SELECT", s.select(&cfg.folder)).await?;
        let uid_validity = folder
            .uid_validity
            .ok_or_else(|| PollError::Protocol("the server reports no UIDVALIDITY for the folder".into()))?;
        *healthy = true;
        self.set_connected(true);
        tracing::info!(mailbox = %cfg.name, idle = can_idle, "IMAP mailbox opened");

        let mut last_uid = match self.app.mailbox_position(cfg.name.clone()).await? {
            Some((v, last)) if v == uid_validity => {
                // Unread mail at or below the position: committed before a crash but never
                // acknowledged, or left over from an interrupted first contact. Process it
                // again: the dedup ledger recognises what was committed, the rest is new.
                // (Read mail down there is history and stays untouched.)
                let unseen = self.search(&mut s, &format!("UNSEEN UID 1:{}", last.max(1))).await?;
                let pending: Vec<u32> = unseen.into_iter().filter(|u| *u <= last).collect();
                if !pending.is_empty() {
                    tracing::info!(mailbox = %cfg.name, count = pending.len(), "unacknowledged messages below the position: processing them again");
                    self.process(&mut s, uid_validity, pending, Position::Fixed(last), can).await?;
                }
                last
            }
            previous => {
                if previous.is_some() {
                    tracing::warn!(mailbox = %cfg.name, "UIDVALIDITY changed: reading the folder again (duplicates are recognised)");
                }
                // First contact with this folder: everything unread is new mail; mail that
                // was already read before Caseflow was connected is history, not new cases.
                // The position is the baseline from the first batch on, so that after an
                // interruption the rest of the unread mail is found by the path above.
                let unseen = self.search(&mut s, "UNSEEN").await?;
                let baseline = folder.uid_next.map_or(0, |n| n.saturating_sub(1));
                let before: Vec<u32> = unseen.into_iter().filter(|u| *u <= baseline).collect();
                self.process(&mut s, uid_validity, before, Position::Fixed(baseline), can).await?;
                baseline
            }
        };

        loop {
            if *shutdown.borrow() {
                let _ = timed("LOGOUT", s.logout()).await;
                return Ok(());
            }
            // Drain everything above the last committed UID, one batch per transaction.
            loop {
                let found = self.search(&mut s, &format!("UID {}:*", last_uid.saturating_add(1))).await?;
                // "n:*" always matches the highest UID, even when it is below n.
                let new: Vec<u32> = found.into_iter().filter(|u| *u > last_uid).collect();
                if new.is_empty() {
                    break;
                }
                last_uid = self.process(&mut s, uid_validity, new, Position::PerBatch, can).await?.max(last_uid);
                if *shutdown.borrow() {
                    break;
                }
            }
            if *shutdown.borrow() {
                continue;
            }
            let wait = Duration::from_secs(cfg.poll_interval_secs).min(MAX_IDLE);
            if can_idle {
                let mut idle = s.idle();
                timed("IDLE", idle.init()).await?;
                {
                    let (fut, stop) = idle.wait_with_timeout(wait);
                    tokio::select! {
                        r = fut => { r?; }
                        _ = shutdown.changed() => { drop(stop); }
                    }
                }
                s = timed("DONE", idle.done()).await?;
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    async fn search(&self, s: &mut ImapSession, query: &str) -> Result<Vec<u32>, PollError> {
        let mut uids: Vec<u32> = timed("UID SEARCH", s.uid_search(query)).await?.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Fetches, commits and acknowledges `uids` (sorted) in batches. Returns the position
    /// recorded last.
    async fn process(
        &self,
        s: &mut ImapSession,
        uid_validity: u32,
        uids: Vec<u32>,
        position: Position,
        can: Caps,
    ) -> Result<u32, PollError> {
        let batch = usize::try_from(self.cfg.batch_size).unwrap_or(100).max(1);
        let chunks: Vec<Vec<u32>> = if uids.is_empty() {
            vec![Vec::new()]
        } else {
            // Sizes first (one cheap round trip), so that a batch also stays under
            // `batch_bytes`: a few huge messages must not make one giant fetch.
            let set = uid_set(&uids);
            let sizes: Vec<(u32, u32)> = timed("UID FETCH RFC822.SIZE", async {
                s.uid_fetch(&set, "(UID RFC822.SIZE)").await?.try_collect::<Vec<_>>().await
            })
            .await?
            .iter()
            .filter_map(|f| Some((f.uid?, f.size?)))
            .collect();
            let sizes: std::collections::HashMap<u32, u32> = sizes.into_iter().collect();
            chunk_by_size(&uids, &sizes, batch, self.cfg.batch_bytes)
        };
        let mut recorded = 0;
        for chunk in &chunks {
            let chunk = chunk.as_slice();
            let mut mails = Vec::with_capacity(chunk.len());
            if !chunk.is_empty() {
                let set = uid_set(chunk);
                let fetches: Vec<_> = timed("UID FETCH", async {
                    s.uid_fetch(&set, "(UID BODY.PEEK[])").await?.try_collect::<Vec<_>>().await
                })
                .await?;
                for f in &fetches {
                    if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                        if chunk.binary_search(&uid).is_ok() {
                            mails.push(FetchedMail { uid, raw: body.to_vec() });
                        }
                    }
                }
            }
            mails.sort_by_key(|m| m.uid);
            mails.dedup_by_key(|m| m.uid);
            let got: Vec<u32> = mails.iter().map(|m| m.uid).collect();
            // A UID the server did not return (expunged meanwhile, or a server hiccup) is not
            // acknowledged, and the position stops just before it: if it still exists, the next
            // search finds it again.
            let first_missing = chunk.iter().copied().find(|u| got.binary_search(u).is_err());
            let read_up_to = match (position, first_missing) {
                (Position::Fixed(p), _) => p,
                (Position::PerBatch, Some(m)) => m.saturating_sub(1),
                (Position::PerBatch, None) => chunk.last().copied().unwrap_or(0),
            };
            let fetched = mails.len();
            let received =
                self.app.receive_mailbox_batch(self.cfg.name.clone(), uid_validity, mails, read_up_to).await?;
            if !got.is_empty() {
                self.acknowledge(s, &got, can).await?;
            }
            recorded = read_up_to;
            self.app.metrics().imap_fetched.with_label_values(&[self.cfg.name.as_str()]).inc_by(fetched as u64);
            if fetched > 0 {
                tracing::info!(mailbox = %self.cfg.name, fetched, stored = received.len(), "IMAP batch committed");
            }
            if first_missing.is_some() && position == Position::PerBatch {
                // Let the next search decide what is still there.
                break;
            }
        }
        Ok(recorded)
    }

    /// Tells the server the messages are processed: `\Seen`, or moved to `move_to`.
    async fn acknowledge(&self, s: &mut ImapSession, uids: &[u32], can: Caps) -> Result<(), PollError> {
        let set = uid_set(uids);
        match self.cfg.processed {
            Processed::Seen => {
                timed("UID STORE", async {
                    s.uid_store(&set, "+FLAGS.SILENT (\\Seen)").await?.try_collect::<Vec<_>>().await
                })
                .await?;
            }
            Processed::Move if can.mv => {
                timed("UID MOVE", s.uid_mv(&set, &self.cfg.move_to)).await?;
            }
            Processed::Move => {
                timed("UID COPY", s.uid_copy(&set, &self.cfg.move_to)).await?;
                timed("UID STORE", async {
                    s.uid_store(&set, "+FLAGS.SILENT (\\Seen \\Deleted)").await?.try_collect::<Vec<_>>().await
                })
                .await?;
                // Only our own messages: a plain EXPUNGE would also remove what other clients
                // marked deleted. Without UIDPLUS they stay flagged for the server's clean-up.
                if can.uidplus {
                    timed("UID EXPUNGE", async { s.uid_expunge(&set).await?.try_collect::<Vec<_>>().await }).await?;
                }
            }
        }
        Ok(())
    }
}

/// Server capabilities the poller uses.
#[derive(Debug, Clone, Copy)]
struct Caps {
    mv: bool,
    uidplus: bool,
}

/// How a batch moves the mailbox position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// To the batch's last UID (new mail above the position).
    PerBatch,
    /// To a fixed UID (first contact: the baseline; a restart: the old position).
    Fixed(u32),
}

#[cfg(test)]
mod tests {
    use super::uid_set;

    #[test]
    fn batches_respect_count_and_bytes() {
        let sizes: std::collections::HashMap<u32, u32> = [(1, 10), (2, 10), (3, 100), (4, 10), (5, 10)].into();
        assert_eq!(super::chunk_by_size(&[1, 2, 3, 4, 5], &sizes, 2, 1000), vec![vec![1, 2], vec![3, 4], vec![5]]);
        assert_eq!(super::chunk_by_size(&[1, 2, 3, 4, 5], &sizes, 10, 25), vec![vec![1, 2], vec![3], vec![4, 5]]);
        assert_eq!(super::chunk_by_size(&[9], &sizes, 10, 25), vec![vec![9]], "unknown size, alone anyway");
        assert!(super::chunk_by_size(&[], &sizes, 10, 25).is_empty());
    }

    #[test]
    fn uid_sets_are_compact_ranges() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[4, 6, 8]), "4,6,8");
    }
}
