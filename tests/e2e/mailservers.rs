//! Real mail servers for the email tests, started by the project's own scripts
//! (`scripts/mail/`): Dovecot (Debian `dovecot-imapd`) as the IMAP server and an aiosmtpd
//! sink (Debian `python3-aiosmtpd`) that stores every message it accepts in a Maildir.

use async_imap::Session;
use caseflow_app::settings::{MailboxSettings, Processed, Secret, TlsMode};
use caseflow_app::Settings;
use futures_util::TryStreamExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tokio::net::TcpStream;

pub const IMAP_USER: &str = "support";
pub const IMAP_PASSWORD: &str = "imap-test-pw";
/// A second mailbox user on the same server.
pub const OTHER_USER: &str = "sales";
/// Recipients matching this get a permanent `550` from the SMTP sink.
pub const REJECTED_RCPT: &str = "^bounce-me@";

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mail").join(name)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run mail server script");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Dovecot and an SMTP sink on free loopback ports, in a fresh directory; stopped on drop.
pub struct MailServers {
    pub dir: PathBuf,
    pub imap_port: u16,
    pub smtp_port: u16,
    /// Implicit-TLS ports (IMAPS, SMTPS) when started with [`MailServers::start_tls`]; the
    /// plain ports then also offer STARTTLS. Certificates: `imap/tls/cert.pem`, `smtp/tls/cert.pem`.
    pub tls_ports: Option<(u16, u16)>,
}

impl MailServers {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("cf_mail_{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = Self { dir, imap_port: free_port(), smtp_port: free_port(), tls_ports: None };
        s.start_imap();
        s.start_smtp();
        s
    }

    /// Like [`MailServers::start`], with TLS (self-signed certificates) and a second IMAP user.
    pub fn start_tls() -> Self {
        let dir = std::env::temp_dir().join(format!("cf_mail_{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let s =
            Self { dir, imap_port: free_port(), smtp_port: free_port(), tls_ports: Some((free_port(), free_port())) };
        s.start_imap();
        s.start_smtp();
        s
    }

    pub fn ca_file(&self, server: &str) -> String {
        self.dir.join(server).join("tls/cert.pem").display().to_string()
    }

    fn imap_dir(&self) -> PathBuf {
        self.dir.join("imap")
    }

    fn smtp_dir(&self) -> PathBuf {
        self.dir.join("smtp")
    }

    pub fn start_imap(&self) {
        let mut c = Command::new(script("start-imap.sh"));
        c.env("IMAP_USERS", format!("{IMAP_USER}:{IMAP_PASSWORD} {OTHER_USER}:{IMAP_PASSWORD}"))
            .arg(self.imap_dir())
            .arg(self.imap_port.to_string());
        if let Some((imaps, _)) = self.tls_ports {
            c.arg(imaps.to_string());
        }
        run(&mut c);
    }

    pub fn stop_imap(&self) {
        run(Command::new(script("stop-imap.sh")).arg(self.imap_dir()));
    }

    pub fn start_smtp(&self) {
        let mut c = Command::new(script("start-smtp.sh"));
        c.env("SMTP_REJECT_RCPT", REJECTED_RCPT).arg(self.smtp_dir()).arg(self.smtp_port.to_string());
        if let Some((_, smtps)) = self.tls_ports {
            c.arg(smtps.to_string());
        }
        run(&mut c);
    }

    /// The SMTP sink's envelope log: one JSON object per accepted message.
    pub fn envelopes(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.smtp_dir().join("maildir/envelopes.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn stop_smtp(&self) {
        run(Command::new(script("stop-smtp.sh")).arg(self.smtp_dir()));
    }

    /// The mailbox entry for Caseflow's settings.
    pub fn mailbox(&self, batch_size: u32) -> MailboxSettings {
        MailboxSettings {
            name: "support".into(),
            host: "127.0.0.1".into(),
            port: self.imap_port,
            tls: TlsMode::Plain,
            username: IMAP_USER.into(),
            password: Secret::new(IMAP_PASSWORD),
            password_env: String::new(),
            folder: "INBOX".into(),
            processed: Processed::Seen,
            move_to: String::new(),
            idle: true,
            poll_interval_secs: 2,
            batch_size,
            batch_bytes: 32 << 20,
            ca_file: String::new(),
        }
    }

    /// Environment overrides that point Caseflow's outbox at the sink, with fast retries.
    pub fn smtp_env(&self) -> Vec<(String, String)> {
        vec![
            ("CASEFLOW__SMTP__HOST".into(), "127.0.0.1".into()),
            ("CASEFLOW__SMTP__PORT".into(), self.smtp_port.to_string()),
            ("CASEFLOW__SMTP__TLS".into(), "plain".into()),
            ("CASEFLOW__SMTP__TIMEOUT_SECS".into(), "5".into()),
            ("CASEFLOW__SMTP__RETRY_BASE_SECS".into(), "1".into()),
            ("CASEFLOW__SMTP__RETRY_MAX_SECS".into(), "2".into()),
            ("CASEFLOW__SMTP__POLL_INTERVAL_MS".into(), "200".into()),
        ]
    }

    /// Settings for a server reading this IMAP server and sending through this sink.
    pub fn settings(&self, db: crate::helpers::Db, batch_size: u32) -> Settings {
        let env = self.smtp_env();
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut s = crate::helpers::settings(db, &pairs);
        s.email.support_addresses = vec![s.email.from_address.clone()];
        s.email.mailboxes = vec![self.mailbox(batch_size)];
        s
    }

    /// Every message the SMTP sink accepted, in arrival order, byte-exact.
    pub fn sent(&self) -> Vec<Vec<u8>> {
        let dir = self.smtp_dir().join("maildir/new");
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
            Err(_) => return Vec::new(),
        };
        files.sort();
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    pub async fn session(&self) -> Session<TcpStream> {
        self.session_as(IMAP_USER).await
    }

    pub async fn session_as(&self, user: &str) -> Session<TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", self.imap_port)).await.unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().expect("greeting");
        client.login(user, IMAP_PASSWORD).await.map_err(|(e, _)| e).unwrap()
    }

    /// APPENDs messages to INBOX, as an MTA delivering them would.
    pub async fn append(&self, raws: &[String]) {
        let mut s = self.session().await;
        for raw in raws {
            s.append("INBOX", None, None, raw.as_bytes()).await.unwrap();
        }
        s.logout().await.unwrap();
    }

    /// APPENDs one message with flags, e.g. `(\\Seen)` for mail a human already read.
    pub async fn append_with_flags(&self, raw: &str, flags: &str) {
        let mut s = self.session().await;
        s.append("INBOX", Some(flags), None, raw.as_bytes()).await.unwrap();
        s.logout().await.unwrap();
    }

    /// (total, seen) message counts in INBOX.
    pub async fn counts(&self) -> (usize, usize) {
        let mut s = self.session().await;
        s.select("INBOX").await.unwrap();
        let all = s.uid_search("ALL").await.unwrap().len();
        let seen = s.uid_search("SEEN").await.unwrap().len();
        s.logout().await.unwrap();
        (all, seen)
    }

    /// Flags of every message in INBOX (for debugging failures).
    #[allow(dead_code)]
    pub async fn flags(&self) -> Vec<String> {
        let mut s = self.session().await;
        s.select("INBOX").await.unwrap();
        let f: Vec<_> = s.uid_fetch("1:*", "(UID FLAGS)").await.unwrap().try_collect().await.unwrap();
        f.iter().map(|m| format!("{:?} {:?}", m.uid, m.flags().collect::<Vec<_>>())).collect()
    }
}

impl Drop for MailServers {
    fn drop(&mut self) {
        let _ = Command::new(script("stop-imap.sh")).arg(self.imap_dir()).output();
        let _ = Command::new(script("stop-smtp.sh")).arg(self.smtp_dir()).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub use crate::helpers::eventually;
