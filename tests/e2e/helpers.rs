//! `spawn()` starts the same server `caseflow serve` runs, on port 0, with a fresh database.

use caseflow_app::directory::NewAgent;
use caseflow_app::{Principal, Settings};
use caseflow_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub const ADMIN_EMAIL: &str = "root@caseflow.test";
pub const PASSWORD: &str = "correct-horse-battery";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// Session token of the admin created for the test.
    pub admin: String,
    pub running: Option<caseflow::Running>,
    pub settings: Settings,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// Asserts the status and, for errors, the stable error shape and code.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        self.body
    }

    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()), "body: {}", self.body);
        let keys: Vec<&String> = self.body.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        assert_eq!(keys.len(), 2, "error body must be exactly {{code, message}}: {}", self.body);
        self.body
    }
}

/// The `id` field of a JSON object.
pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// The `caseflow` binary, started from a clean slate: no `CASEFLOW__*` from the developer's
/// shell, warnings only.
pub fn caseflow() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_caseflow"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CASEFLOW__") || k == "CASEFLOW_CONFIG" {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "warn");
    c
}

/// A plain-text email with a fresh Message-ID: `(message_id, raw)`.
pub fn email(from: &str, subject: &str, extra_headers: &str, body: &str) -> (String, String) {
    let mid = format!("{}@mail.example.org", uuid::Uuid::now_v7().simple());
    let raw = format!(
        "From: {from}\r\nTo: support@caseflow.localhost\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n{extra_headers}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    );
    (mid, raw)
}

/// A case's messages (up to 100), as the API shows them.
pub async fn messages(app: &TestApp, case_id: &str) -> Vec<Value> {
    app.get(&format!("/api/v1/cases/{case_id}/messages?limit=100")).await.expect(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

pub fn database_url(db: Db) -> String {
    match db {
        Db::Sqlite => {
            let dir = std::env::temp_dir().join(unique("caseflow_e2e"));
            format!("sqlite://{}", dir.join("caseflow.db").display())
        }
        Db::Postgres => {
            let admin = std::env::var("CASEFLOW_TEST_POSTGRES_URL").unwrap_or_else(|_| {
                panic!(
                    "CASEFLOW_TEST_POSTGRES_URL is not set: run `make test` (it starts PostgreSQL) or `make pg-start`"
                )
            });
            caseflow_store::create_postgres_database(&admin, &unique("cf_e2e")).expect("create test database")
        }
    }
}

pub fn settings(db: Db, extra: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("CASEFLOW__DATABASE__URL".into(), database_url(db));
    env.insert("CASEFLOW__DATABASE__MAX_CONNECTIONS".into(), "4".into());
    env.insert("CASEFLOW__SERVER__BIND".into(), "127.0.0.1:0".into());
    env.insert("CASEFLOW__SERVER__WORKERS".into(), "2".into());
    env.insert("CASEFLOW__SERVER__SHUTDOWN_TIMEOUT_SECS".into(), "1".into());
    env.insert("CASEFLOW__METRICS__BIND".into(), "127.0.0.1:0".into());
    // Tests open many chats and forms from one address; the limit has its own tests.
    env.insert("CASEFLOW__WEB_FORM__PER_IP_BURST".into(), "1000".into());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    Settings::load_with_env(None, Some(env)).expect("test settings")
}

pub async fn spawn(db: Db) -> TestApp {
    spawn_with(db, &[]).await
}

pub async fn spawn_with(db: Db, extra: &[(&str, &str)]) -> TestApp {
    spawn_settings(settings(db, extra)).await
}

/// Starts the server with settings the test built (e.g. with mailboxes, which have no
/// environment-variable form).
pub async fn spawn_settings(settings: Settings) -> TestApp {
    let clock = caseflow::clock_of(&settings);
    spawn_with_clock(settings, clock).await
}

/// Starts the server with an injected clock (tests that move time) and creates the admin.
pub async fn spawn_with_clock(settings: Settings, clock: std::sync::Arc<dyn caseflow_core::Clock>) -> TestApp {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let running = caseflow::start_with_clock(settings.clone(), listener, clock).await.expect("server starts");
    running
        .app
        .create_agent(
            &Principal::System,
            NewAgent {
                email: ADMIN_EMAIL.into(),
                name: "Root Admin".into(),
                role: Role::Admin,
                password: Some(PASSWORD.into()),
                team_id: None,
                max_load: None,
            },
        )
        .await
        .expect("admin");
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let mut app = TestApp { base, client, admin: String::new(), running: Some(running), settings };
    app.admin = app.login(ADMIN_EMAIL, PASSWORD).await;
    app
}

impl TestApp {
    pub fn app(&self) -> &caseflow_app::App {
        &self.running.as_ref().expect("running").app
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .call(Method::POST, "/api/v1/auth/login", None, Some(json!({"email": email, "password": password})))
            .await;
        r.expect(200)["access_token"].as_str().expect("token").to_owned()
    }

    /// Waits until the server's IMAP session for `mailbox` is up (its `imap_connected` gauge):
    /// on a loaded machine a first connection that failed is retried after a backoff, and a
    /// test about live updates should not measure that.
    pub async fn imap_connected(&self, mailbox: &str) {
        let url = format!("http://{}/metrics", self.running.as_ref().expect("running").metrics_addr.expect("metrics"));
        let line = format!("caseflow_imap_connected{{mailbox=\"{mailbox}\"}} 1");
        eventually(60, &format!("the IMAP session of {mailbox}"), || async {
            let text = self.client.get(&url).send().await.ok()?.text().await.ok()?;
            text.contains(&line).then_some(())
        })
        .await;
    }

    /// Logs the admin in again (after a test moved the clock past the session's lifetime).
    pub async fn relogin(&mut self) {
        self.admin = self.login(ADMIN_EMAIL, PASSWORD).await;
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, Some(&self.admin.clone()), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(&self.admin.clone()), Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(&self.admin.clone()), Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(&self.admin.clone()), Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, Some(&self.admin.clone()), None).await
    }

    /// Creates a case from `email` and returns its JSON.
    pub async fn new_case(&self, email: &str, subject: &str) -> Value {
        self.post(
            "/api/v1/cases",
            json!({"subject": subject, "body": "Hello, it broke.", "customer": {"email": email}}),
        )
        .await
        .expect(201)
    }

    /// Creates an agent with `role` and returns (id, session token).
    pub async fn agent(&self, email: &str, role: &str) -> (String, String) {
        let a = self
            .post("/api/v1/agents", json!({"email": email, "name": "Test Agent", "role": role, "password": PASSWORD}))
            .await
            .expect(201);
        (a["id"].as_str().expect("id").to_owned(), self.login(email, PASSWORD).await)
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// Runs an async test body once against SQLite and once against PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::helpers::spawn($crate::helpers::Db::Sqlite).await;
                    super::$name(&app).await;
                    app.stop().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let app = $crate::helpers::spawn($crate::helpers::Db::Postgres).await;
                    super::$name(&app).await;
                    app.stop().await;
                }
            }
        )+
    };
    // Bodies that build their own server from the backend (`async fn(Db)`).
    (db: $($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Db::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::Db::Postgres).await;
                }
            }
        )+
    };
}

/// Starts another node on the database of `settings` (whose admin already exists).
pub async fn spawn_node(settings: Settings) -> TestApp {
    let clock = caseflow::clock_of(&settings);
    spawn_node_with_clock(settings, clock).await
}

/// [`spawn_node`] with an injected clock.
pub async fn spawn_node_with_clock(settings: Settings, clock: std::sync::Arc<dyn caseflow_core::Clock>) -> TestApp {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let running = caseflow::start_with_clock(settings.clone(), listener, clock).await.expect("node starts");
    let base = format!("http://{}", running.addr);
    let mut app =
        TestApp { base, client: reqwest::Client::new(), admin: String::new(), running: Some(running), settings };
    app.admin = app.login(ADMIN_EMAIL, PASSWORD).await;
    app
}

/// Polls `probe` every 50 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out after {secs} s waiting for: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Takes the next complete Server-Sent Events block off `buf`: `None` when there is none yet,
/// `Some(None)` for a block without an event (a comment, `retry:`), else its id and JSON data.
pub fn next_sse_block(buf: &mut String) -> Option<Option<(String, serde_json::Value)>> {
    let end = buf.find("\n\n")?;
    let block: String = buf.drain(..end + 2).collect();
    let id = block.lines().find_map(|l| l.strip_prefix("id: ")).map(str::to_owned);
    let data = block.lines().find_map(|l| l.strip_prefix("data: "));
    Some(match (id, data) {
        (Some(id), Some(data)) => Some((id, serde_json::from_str(data).expect("event JSON"))),
        _ => None,
    })
}

/// Appends the stream's next chunk to `buf`; fails the test past `deadline` or when the
/// stream ends (`got` says what was read so far).
pub async fn next_sse_chunk(
    stream: &mut reqwest::Response,
    buf: &mut String,
    deadline: std::time::Instant,
    got: &dyn std::fmt::Debug,
) {
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    assert!(!left.is_zero(), "timed out; got {got:?}");
    match tokio::time::timeout(left, stream.chunk()).await {
        Ok(Ok(Some(bytes))) => buf.push_str(&String::from_utf8_lossy(&bytes)),
        other => panic!("stream ended: {other:?}; got {got:?}"),
    }
}
