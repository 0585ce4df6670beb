//! The agent inbox in Firefox (Debian's `firefox-esr`), driven over WebDriver BiDi — the W3C
//! protocol Firefox speaks itself on `--remote-debugging-port`, so no geckodriver (which Debian
//! does not ship) is needed: log in, see a new case arrive live, open it, reply.

use crate::helpers::*;
use crate::mailservers::{eventually, free_port};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A headless Firefox and one BiDi session on its only tab.
pub struct Firefox {
    process: Child,
    socket: Socket,
    next_id: u64,
    context: String,
    profile: std::path::PathBuf,
}

impl Firefox {
    pub async fn start() -> Firefox {
        let binary = ["/usr/bin/firefox-esr", "/usr/bin/firefox"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("Firefox missing: run scripts/browser/ensure-packages.sh (Debian firefox-esr)");
        let port = free_port();
        let profile = std::env::temp_dir().join(format!("cf-firefox-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&profile).unwrap();
        use std::os::unix::process::CommandExt;
        let process = Command::new(binary)
            .process_group(0)
            .args(["--headless", "--no-remote", "--width=1280", "--height=800", "--remote-debugging-port"])
            .arg(port.to_string())
            .arg("--profile")
            .arg(&profile)
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Firefox starts");
        let url = format!("ws://127.0.0.1:{port}/session");
        let socket = eventually(30, "Firefox's WebDriver BiDi endpoint", || async {
            tokio_tungstenite::connect_async(url.as_str()).await.ok().map(|(s, _)| s)
        })
        .await;
        let mut ff = Firefox { process, socket, next_id: 0, context: String::new(), profile };
        ff.cmd("session.new", json!({"capabilities": {}})).await;
        let tree = ff.cmd("browsingContext.getTree", json!({})).await;
        ff.context = tree["contexts"][0]["context"].as_str().expect("a browsing context").to_owned();
        ff
    }

    /// Sends one command and returns its result (events in between are skipped).
    async fn cmd(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let frame = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(Message::text(frame)).await.expect("BiDi send");
        loop {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(30), self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method} within 30 s"))
                .expect("BiDi socket open")
                .expect("BiDi frame");
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("BiDi JSON");
            if v["id"] == id {
                assert_ne!(v["type"], "error", "{method} failed: {v}");
                return v["result"].clone();
            }
        }
    }

    pub async fn goto(&mut self, url: &str) {
        let ctx = self.context.clone();
        self.cmd("browsingContext.navigate", json!({"context": ctx, "url": url, "wait": "complete"})).await;
    }

    /// Evaluates a JavaScript expression (promises awaited) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let ctx = self.context.clone();
        let r = self
            .cmd("script.evaluate", json!({"expression": expression, "target": {"context": ctx}, "awaitPromise": true}))
            .await;
        assert_eq!(r["type"], "success", "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page.
    pub async fn wait(&mut self, what: &str, expression: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        // A throw while the page is changing (an element not there yet) counts as "not yet".
        let guarded = format!("(() => {{ try {{ return ({expression}); }} catch (e) {{ return false; }} }})()");
        while self.eval(&guarded).await != Value::Bool(true) {
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG screenshot under docs/screenshots/.
    pub async fn screenshot(&mut self, name: &str) {
        use base64::Engine;
        let ctx = self.context.clone();
        let r = self.cmd("browsingContext.captureScreenshot", json!({"context": ctx})).await;
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().expect("image data")).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Firefox {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", self.process.id())]).status();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Types into an input the way a person's keystrokes end up: value set, `input` fired.
fn fill(id: &str, text: &str) -> String {
    format!(
        "(() => {{ const e = document.getElementById({id}); e.value = {text}; \
         e.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()",
        id = serde_json::to_string(id).unwrap(),
        text = serde_json::to_string(text).unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_works_in_firefox() {
    let app = spawn(Db::Sqlite).await;
    app.agent("fay.firefox@caseflow.test", "agent").await;
    let mut ff = Firefox::start().await;
    ff.goto(&format!("{}/app", app.base)).await;
    ff.wait("the login form", "!!document.getElementById('cf-login')").await;
    ff.eval(&fill("cf-email", "fay.firefox@caseflow.test")).await;
    ff.eval(&fill("cf-password", PASSWORD)).await;
    ff.eval("document.getElementById('cf-login-submit').click(), true").await;
    ff.wait("the inbox", "!!document.getElementById('cf-inbox-title')").await;
    ff.eval("location.hash = '#/inbox/open', true").await;
    ff.wait("the open view", "document.getElementById('cf-inbox-title').textContent === 'All open'").await;

    // A case arrives while the page is open: it shows without a reload.
    ff.eval("window.__marker = 'same page', true").await;
    let case = app.new_case("fox@example.org", "Seen in Firefox").await;
    let case_id = id(&case);
    ff.wait(
        "the new case in the list",
        "document.getElementById('cf-case-rows').textContent.includes('Seen in Firefox')",
    )
    .await;
    assert_eq!(ff.eval("window.__marker").await, "same page");
    ff.screenshot("inbox-firefox").await;

    // Open it and reply; the reply is stored as the agent's.
    ff.eval("document.querySelector('#cf-case-rows a.cf-subject').click(), true").await;
    ff.wait("the case", "document.getElementById('cf-case-title')?.textContent.includes('Seen in Firefox') ?? false")
        .await;
    ff.eval(&fill("cf-compose-body", "Answered from Firefox.")).await;
    ff.eval("document.getElementById('cf-send').click(), true").await;
    ff.wait(
        "the reply in the timeline",
        "document.getElementById('cf-timeline').textContent.includes('Answered from Firefox.')",
    )
    .await;
    let msgs = messages(&app, &case_id).await;
    let reply = msgs.iter().find(|m| m["body_text"] == "Answered from Firefox.").expect("the reply stored");
    assert_eq!((reply["direction"].as_str(), reply["author_kind"].as_str()), (Some("outbound"), Some("agent")));
    app.stop().await;
}
