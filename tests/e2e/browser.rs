//! Browser tests in a real headless Chromium (Debian `chromium` + `chromium-driver`), driven
//! over the W3C WebDriver protocol with plain HTTP: the support form submitted without
//! JavaScript tricks, and chat messages exchanged through the widget with an agent's socket.
//! Screenshots land in `docs/screenshots/`.

use crate::chat::Ws;
use crate::helpers::*;
use crate::mailservers::{eventually, free_port};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    profile: std::path::PathBuf,
}

impl Browser {
    pub async fn start() -> Browser {
        let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromedriver missing: run scripts/browser/ensure-packages.sh (Debian chromium-driver)");
        let port = free_port();
        use std::os::unix::process::CommandExt;
        // Its own process group, so that the browser it starts goes with it (see Drop).
        let driver = Command::new(chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        eventually(20, "chromedriver ready", || async {
            let r = http.get(format!("{base}/status")).send().await.ok()?;
            let v: Value = r.json().await.ok()?;
            (v["value"]["ready"] == true).then_some(())
        })
        .await;
        let profile = std::env::temp_dir().join(format!("cf-chromium-{}", uuid::Uuid::now_v7().simple()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--window-size=1280,800",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let r: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no browser session: {r}")).to_owned();
        Browser { driver, base, session, http, profile }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// Waits for an element matching the CSS selector and returns its id.
    pub async fn find(&self, css: &str) -> String {
        eventually(15, &format!("element {css}"), || async {
            let v =
                self.cmd(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
            v[ELEMENT].as_str().map(str::to_owned)
        })
        .await
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{id}/value"), Some(json!({"text": text}))).await;
    }

    /// Presses keys in an element (WebDriver key codes, e.g. `\u{E007}` for Enter).
    pub async fn keys(&self, css: &str, keys: &str) {
        let id = self.find(css).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{id}/value"), Some(json!({"text": keys}))).await;
    }

    /// Clicks like a user: WebDriver refuses when another element would get the click (an
    /// overlay, a toast), and that fails the test instead of passing unnoticed. An element a
    /// live refresh replaced between finding and clicking ("stale element reference") is found
    /// again by its selector, as a user would click the new one.
    pub async fn click(&self, css: &str) {
        for _ in 0..5 {
            let id = self.find(css).await;
            let v = self.cmd(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))).await;
            if v.get("error").and_then(Value::as_str) == Some("stale element reference") {
                continue;
            }
            assert!(v.get("error").is_none(), "click on {css} refused: {v}");
            return;
        }
        panic!("{css} was replaced five times in a row while clicking it");
    }

    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.cmd(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until an element's text contains `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        eventually(15, &format!("{needle:?} in {css}"), || async {
            let t = self.text(css).await;
            t.contains(needle).then_some(t)
        })
        .await
    }

    /// Runs `js` (a function body; `return` gives the result) in the page.
    pub async fn script(&self, js: &str) -> Value {
        self.cmd(reqwest::Method::POST, "/execute/sync", Some(json!({"script": js, "args": []}))).await
    }

    /// Waits until `js` returns true in the page.
    pub async fn wait_true(&self, what: &str, js: &str) {
        eventually(15, what, || async { (self.script(js).await == Value::Bool(true)).then_some(()) }).await;
    }

    /// Saves a PNG screenshot under docs/screenshots/.
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().expect("screenshot data")).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn quit(self) {
        let _ = self.http.delete(format!("{}/session/{}", self.base, self.session)).send().await;
    }
}

impl Drop for Browser {
    /// Also after a failed assertion: chromedriver and the browser it started go, the profile
    /// is removed.
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", self.driver.id())]).status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_and_the_widget_work_in_chromium() {
    let app = spawn(Db::Sqlite).await;
    let browser = Browser::start().await;

    // The support form, filled in and sent like a person would.
    browser.goto(&format!("{}/support", app.base)).await;
    browser.type_into("#f-name", "Hana Kim").await;
    browser.type_into("#f-email", "hana@example.org").await;
    browser.click("#f-topic option[value=technical]").await;
    browser.type_into("#f-subject", "App crashes on start").await;
    browser.type_into("#f-message", "Since the update the app closes at once.").await;
    browser.screenshot("support-form").await;
    browser.click("form.cf-form button[type=submit]").await;
    let confirmation = browser.wait_text("main", "Your case number is").await;
    browser.screenshot("support-confirmation").await;
    let number: i64 =
        confirmation.split('#').nth(1).unwrap().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
    let cases = app.get(&format!("/api/v1/cases?q={number}")).await.expect(200);
    let case = cases["items"].as_array().unwrap().iter().find(|c| c["number"] == number).expect("the form's case");
    assert_eq!((case["channel"].as_str(), case["topic"].as_str()), (Some("web"), Some("technical")));

    // The chat page: the widget starts a chat; an agent answers on their socket.
    let mut agent = Ws::agent(&app, &app.admin).await;
    browser.goto(&format!("{}/chat", app.base)).await;
    browser.type_into("#cf-name", "Hana").await;
    browser.click("form[data-cf=start] button").await;
    browser.type_into("#cf-text", "Is there a workaround?").await;
    browser.click("form[data-cf=compose] button").await;
    let line = agent.recv_type("message").await;
    assert_eq!((line["body"].as_str(), line["author_name"].as_str()), (Some("Is there a workaround?"), Some("Hana")));
    let case_id = line["case_id"].as_str().unwrap().to_owned();
    agent.send(json!({"type": "message", "case_id": case_id, "client_id": "a-1", "body": "Yes: hold Shift while starting."})).await;
    agent.recv_type("ack").await;
    let log = browser.wait_text(".cf-chat-log", "Yes: hold Shift while starting.").await;
    assert!(log.contains("Root Admin"), "the agent's name is shown: {log}");
    assert!(log.contains("Is there a workaround?"), "{log}");
    browser.screenshot("chat-widget").await;
    // The browser confirmed it: the answer counts as delivered, no email fallback.
    eventually(10, "the answer confirmed by the browser", || async {
        let msgs = messages(&app, &case_id).await;
        msgs.iter()
            .any(|m| m["body_text"] == "Yes: hold Shift while starting." && m["delivery_status"] == "sent")
            .then_some(())
    })
    .await;
    // A reload resumes the same conversation from the stored session.
    browser.goto(&format!("{}/chat", app.base)).await;
    browser.wait_text(".cf-chat-log", "Yes: hold Shift while starting.").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    agent.close().await;
    browser.quit().await;
    app.stop().await;
}
