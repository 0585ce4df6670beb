//! The email channel against real servers: mail APPENDed to Dovecot becomes cases through the
//! IMAP poller; agent replies leave through the outbox and arrive in the SMTP sink.

use crate::both_backends;
use crate::helpers::*;
use crate::mailservers::*;
use serde_json::{json, Value};

async fn inbound(app: &TestApp) -> Vec<Value> {
    app.get("/api/v1/inbound?limit=100").await.expect(200)["items"].as_array().unwrap().clone()
}

/// Waits until `n` distinct inbound messages are recorded; returns them newest first.
async fn inbound_count(app: &TestApp, n: usize) -> Vec<Value> {
    eventually(30, &format!("{n} inbound messages"), || async {
        let items = inbound(app).await;
        (items.len() >= n).then_some(items)
    })
    .await
}

fn find<'a>(items: &'a [Value], key: &str, value: &str) -> &'a Value {
    items.iter().find(|i| i[key] == value).unwrap_or_else(|| panic!("no item with {key} = {value} in {items:?}"))
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    raw.split("\r\n\r\n").next()?.split("\r\n").find(|l| l.starts_with(&prefix)).map(|l| &l[prefix.len()..])
}

async fn a_conversation_over_imap_and_smtp(db: Db) {
    let servers = MailServers::start();
    let app = spawn_settings(servers.settings(db, 50)).await;

    // A customer writes in.
    let (m1, raw1) = email("Ann Example <ann@example.org>", "Printer on fire", "", "It is on fire.");
    servers.append(std::slice::from_ref(&raw1)).await;
    let items = inbound_count(&app, 1).await;
    assert_eq!(items[0]["outcome"], "case_created", "{items:?}");
    assert_eq!(items[0]["source"], "support");
    let case_id = items[0]["case_id"].as_str().unwrap().to_owned();
    let case = app.get(&format!("/api/v1/cases/{case_id}")).await.expect(200);
    let number = case["number"].as_i64().unwrap();
    assert_eq!(case["channel"], "email");
    // Acknowledged to the IMAP server only after the commit: it is \Seen now.
    eventually(10, "the message flagged \\Seen", || async { (servers.counts().await == (1, 1)).then_some(()) }).await;

    // The agent replies; the outbox sends it through SMTP.
    let reply = app
        .post(&format!("/api/v1/cases/{case_id}/messages"), json!({"kind": "reply", "body": "Unplug it <now> & wait."}))
        .await
        .expect(201);
    let sent = eventually(20, "the reply in the SMTP sink", || async {
        let s = servers.sent();
        (!s.is_empty()).then_some(s)
    })
    .await;
    assert_eq!(sent.len(), 1);
    let raw = String::from_utf8(sent[0].clone()).unwrap();
    assert_eq!(header(&raw, "In-Reply-To"), Some(format!("<{m1}>").as_str()), "{raw}");
    assert_eq!(header(&raw, "References"), Some(format!("<{m1}>").as_str()), "{raw}");
    assert!(header(&raw, "To").unwrap().contains("ann@example.org"), "{raw}");
    assert!(header(&raw, "X-Caseflow-Loop").is_some(), "{raw}");
    assert!(header(&raw, "Auto-Submitted").is_none(), "a human reply is not automatic: {raw}");
    let our_id = header(&raw, "Message-ID").unwrap().trim_matches(['<', '>']).to_owned();
    assert!(our_id.starts_with("caseflow.") && our_id.ends_with("@caseflow.localhost"), "{our_id}");
    let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
    assert_eq!(parsed.subject(), Some(format!("Re: Printer on fire [#{number}]").as_str()));
    assert!(parsed.body_html(0).unwrap().contains("Unplug it &lt;now&gt; &amp; wait."));
    assert!(parsed.body_text(0).unwrap().contains("Unplug it <now> & wait."));
    let reply_id = reply["id"].as_str().unwrap();
    eventually(10, "the reply marked sent", || async {
        let msgs = messages(&app, &case_id).await;
        (find(&msgs, "id", reply_id)["delivery_status"] == "sent").then_some(())
    })
    .await;

    // The customer answers our mail (In-Reply-To only, different subject) and sends a
    // tag-only follow-up; both join the case.
    let (_, answer) = email("ann@example.org", "Re: fire", &format!("In-Reply-To: <{our_id}>\r\n"), "Still smoking.");
    let (_, tagged) = email("ann@example.org", &format!("More info [#{number}]"), "", "Photo attached soon.");
    // Same subject from another customer: a new case, never merged by subject.
    let (_, bob) = email("bob@example.org", "Printer on fire", "", "Mine too.");
    // A third party forwards the thread with the tag: not the case's customer, so a new case.
    let (_, fwd) = email("carol@example.net", &format!("Fwd: Printer on fire [#{number}]"), "", "FYI");
    // Auto-reply to our mail: a note, not a customer reply.
    let (_, ooo) = email(
        "ann@example.org",
        "Automatic reply: Re: Printer on fire",
        &format!("Auto-Submitted: auto-replied\r\nIn-Reply-To: <{our_id}>\r\n"),
        "I am out until Monday.",
    );
    // Our own mail coming back, and a mailing-list message: ignored.
    let (_, own) = email("Caseflow Support <support@caseflow.localhost>", "Re: Printer on fire", "", "loop");
    let (_, list) = email("list@lists.example.org", "[dev] digest", "List-Id: <dev.lists.example.org>\r\n", "digest");
    // A bounce of our reply.
    let dsn = format!(
        "From: MAILER-DAEMON@mx.example.org\r\nTo: support@caseflow.localhost\r\nSubject: Undelivered Mail\r\nMessage-ID: <dsn-{}@mx.example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nMailbox full.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; ann@example.org\r\nAction: failed\r\nStatus: 5.2.2\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@caseflow.localhost\r\nMessage-ID: <{our_id}>\r\n--b--\r\n",
        uuid::Uuid::now_v7().simple()
    );
    // The first message delivered again: recognised, nothing new.
    servers.append(&[answer, tagged, bob, fwd, ooo, own, list, dsn, raw1]).await;
    let items = inbound_count(&app, 9).await;
    eventually(20, "all ten messages flagged \\Seen", || async { (servers.counts().await == (10, 10)).then_some(()) })
        .await;
    // Ten appended, nine distinct: the duplicate made no record and no case.
    assert_eq!(inbound(&app).await.len(), 9);
    let outcomes: Vec<(&str, &str)> =
        items.iter().rev().map(|i| (i["outcome"].as_str().unwrap(), i["reason"].as_str().unwrap())).collect();
    assert_eq!(outcomes[1], ("threaded", "message_id"), "{outcomes:?}");
    assert_eq!(outcomes[2], ("threaded", "subject_tag"), "{outcomes:?}");
    assert_eq!(outcomes[3].0, "case_created", "{outcomes:?}");
    assert_eq!(outcomes[4].0, "case_created", "{outcomes:?}");
    assert_eq!(outcomes[5].0, "note_added", "{outcomes:?}");
    assert_eq!(outcomes[6].0, "ignored", "{outcomes:?}");
    assert_eq!(outcomes[7].0, "ignored", "{outcomes:?}");
    assert_eq!(outcomes[8].0, "bounce_recorded", "{outcomes:?}");
    for i in [1, 2, 5, 8] {
        assert_eq!(items[items.len() - 1 - i]["case_id"], case_id.as_str(), "{outcomes:?}");
    }
    let cases = app.get("/api/v1/cases").await.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 3, "Ann's, Bob's and Carol's: {cases:?}");
    let msgs = messages(&app, &case_id).await;
    assert_eq!(find(&msgs, "id", reply_id)["delivery_status"], "failed", "the bounce marks our reply failed");
    let directions: Vec<&str> = msgs.iter().map(|m| m["direction"].as_str().unwrap()).collect();
    assert_eq!(directions, ["inbound", "outbound", "inbound", "inbound", "note", "note"], "{msgs:?}");
    // No acknowledgement or reply was sent to anything automatic.
    assert_eq!(servers.sent().len(), 1);
    app.running.unwrap().stop().await;
}

both_backends!(db: a_conversation_over_imap_and_smtp);

/// The whole real-world corpus through the real IMAP path: every message is acknowledged to
/// the server (so each was committed: a case, a thread reply, a note, a recorded bounce, an
/// ignore with its reason, or a quarantine), and nothing blocks the mailbox.
async fn the_corpus_over_imap(db: Db) {
    let servers = MailServers::start();
    let files = crate::inbound::corpus_files();
    let raws: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let mut s = servers.session().await;
    for raw in &raws {
        s.append("INBOX", None, None, raw).await.unwrap();
    }
    s.logout().await.unwrap();
    let app = spawn_settings(servers.settings(db, 50)).await;
    let n = raws.len();
    eventually(60, "every corpus message acknowledged", || async { (servers.counts().await == (n, n)).then_some(()) })
        .await;
    // Distinct messages by Message-ID (files without one are distinct by content).
    let cfg = caseflow_ingest::ParseConfig::default();
    let mut keys = std::collections::HashSet::new();
    let mut without_id = 0;
    for raw in &raws {
        match caseflow_ingest::parse(raw, &cfg) {
            Ok(e) if e.message_id.is_some() => {
                keys.insert(e.dedup_key);
            }
            _ => without_id += 1,
        }
    }
    let mut total = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/inbound?limit=100&cursor={c}"),
            None => "/api/v1/inbound?limit=100".to_owned(),
        };
        let page = app.get(&path).await.expect(200);
        total += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(
        total >= keys.len() && total <= keys.len() + without_id,
        "{total} records for {} ids + {without_id} without",
        keys.len()
    );
    app.running.unwrap().stop().await;
}

both_backends!(db: the_corpus_over_imap);

/// Encrypted connections with certificate verification: a mailbox over IMAPS, one over
/// STARTTLS, replies over SMTP with STARTTLS; a mailbox whose server certificate is not trusted
/// gets nothing (and says so in the metrics).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mailboxes_and_relay_verify_certificates() {
    use caseflow_app::settings::TlsMode;
    let servers = MailServers::start_tls();
    let (imaps, _) = servers.tls_ports.unwrap();
    let mut settings = servers.settings(Db::Sqlite, 50);
    let mut implicit = servers.mailbox(50);
    implicit.name = "imaps".into();
    implicit.port = imaps;
    implicit.tls = TlsMode::Implicit;
    implicit.ca_file = servers.ca_file("imap");
    let mut starttls = servers.mailbox(50);
    starttls.name = "starttls".into();
    starttls.username = OTHER_USER.into();
    starttls.tls = TlsMode::Starttls;
    starttls.ca_file = servers.ca_file("imap");
    let mut untrusted = implicit.clone();
    untrusted.name = "untrusted".into();
    untrusted.username = OTHER_USER.into();
    untrusted.ca_file = String::new();
    settings.email.mailboxes = vec![implicit, starttls, untrusted];
    settings.smtp.tls = TlsMode::Starttls;
    settings.smtp.ca_file = servers.ca_file("smtp");
    let app = spawn_settings(settings).await;

    let (_, a) = email("gina@example.org", "Over IMAPS", "", "one");
    servers.append(&[a]).await;
    let (_, b) = email("hank@example.org", "Over STARTTLS", "", "two");
    let mut s = servers.session_as(OTHER_USER).await;
    s.append("INBOX", None, None, b.as_bytes()).await.unwrap();
    s.logout().await.unwrap();
    let items = inbound_count(&app, 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let items_now = inbound(&app).await;
    assert_eq!(items_now.len(), 2, "the untrusted mailbox must not read anything: {items:?}");
    let mut sources: Vec<&str> = items_now.iter().map(|i| i["source"].as_str().unwrap()).collect();
    sources.sort();
    assert_eq!(sources, ["imaps", "starttls"]);
    let metrics = app.client.get(format!("http://{}/metrics", app.running.as_ref().unwrap().metrics_addr.unwrap()));
    let text = metrics.send().await.unwrap().text().await.unwrap();
    assert!(text.contains("caseflow_imap_errors_total{mailbox=\"untrusted\"}"), "{text}");
    assert!(text.contains("caseflow_imap_connected{mailbox=\"imaps\"} 1"), "{text}");

    let case_id = items_now[0]["case_id"].as_str().unwrap().to_owned();
    app.post(&format!("/api/v1/cases/{case_id}/messages"), json!({"kind": "reply", "body": "Encrypted."}))
        .await
        .expect(201);
    let env = eventually(20, "the reply accepted by the relay", || async {
        let e = servers.envelopes();
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(env[0]["tls"], true, "the reply went over STARTTLS: {env:?}");
    app.running.unwrap().stop().await;
}

/// Customer data for a case created through the API with an email address.
async fn case_for(app: &TestApp, email: &str) -> String {
    let c = app
        .post("/api/v1/cases", json!({"subject": "Refund", "body": "Please refund.", "customer": {"email": email}}))
        .await
        .expect(201);
    id(&c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_outage_is_retried_and_refusals_are_visible() {
    let servers = MailServers::start();
    let mut settings = servers.settings(Db::Sqlite, 50);
    settings.email.mailboxes.clear();
    let app = spawn_settings(settings).await;
    servers.stop_smtp();

    // The relay is down: the reply stays queued with the reason, and is retried.
    let case_id = case_for(&app, "dana@example.org").await;
    let reply = app.post(&format!("/api/v1/cases/{case_id}/messages"), json!({"kind": "reply", "body": "Done."})).await;
    let reply_id = id(&reply.expect(201));
    let queued = eventually(20, "a failed attempt recorded", || async {
        let msgs = messages(&app, &case_id).await;
        let m = find(&msgs, "id", &reply_id).clone();
        m["delivery_error"].is_string().then_some(m)
    })
    .await;
    assert_eq!(queued["delivery_status"], "queued", "{queued}");
    assert!(queued["delivery_error"].as_str().unwrap().contains("SMTP"), "{queued}");
    let metrics = app.client.get(format!("http://{}/metrics", app.running.as_ref().unwrap().metrics_addr.unwrap()));
    let text = metrics.send().await.unwrap().text().await.unwrap();
    assert!(text.contains("caseflow_outbox_pending 1"), "{text}");

    // The relay comes back: the reply is delivered, once.
    servers.start_smtp();
    eventually(30, "the reply delivered after the outage", || async {
        let msgs = messages(&app, &case_id).await;
        (find(&msgs, "id", &reply_id)["delivery_status"] == "sent").then_some(())
    })
    .await;
    assert_eq!(servers.sent().len(), 1);
    let m = messages(&app, &case_id).await;
    assert!(find(&m, "id", &reply_id)["delivery_error"].is_null(), "cleared on success");

    // A permanent refusal (550) fails at once and is visible on the message and the audit log.
    let refused_case = case_for(&app, "bounce-me@example.org").await;
    let r = app.post(&format!("/api/v1/cases/{refused_case}/messages"), json!({"kind": "reply", "body": "Hi"})).await;
    let refused = id(&r.expect(201));
    let failed = eventually(20, "the refusal recorded", || async {
        let msgs = messages(&app, &refused_case).await;
        let m = find(&msgs, "id", &refused).clone();
        (m["delivery_status"] == "failed").then_some(m)
    })
    .await;
    assert!(failed["delivery_error"].as_str().unwrap().contains("550"), "{failed}");
    let events = app.get(&format!("/api/v1/cases/{refused_case}/events")).await.expect(200);
    assert!(events["items"].as_array().unwrap().iter().any(|e| e["kind"] == "delivery_failed"), "{events}");
    assert_eq!(servers.sent().len(), 1, "nothing was accepted for the refused recipient");
    app.running.unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_reconnects_after_an_imap_restart() {
    let servers = MailServers::start();
    let app = spawn_settings(servers.settings(Db::Sqlite, 50)).await;
    let (_, first) = email("erin@example.org", "Before restart", "", "one");
    servers.append(&[first]).await;
    inbound_count(&app, 1).await;

    servers.stop_imap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    servers.start_imap();
    let (_, second) = email("frank@example.org", "After restart", "", "two");
    servers.append(&[second]).await;
    let items = inbound_count(&app, 2).await;
    assert_eq!(items[0]["outcome"], "case_created");
    eventually(10, "both flagged \\Seen", || async { (servers.counts().await == (2, 2)).then_some(()) }).await;
    app.running.unwrap().stop().await;
}

/// Connecting Caseflow to a mailbox with history: unread mail becomes cases, mail that was
/// read before is left alone; mail arriving later is taken whatever its flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_contact_takes_unread_mail_only() {
    let servers = MailServers::start();
    let (_, old) = email("old@example.org", "Handled last year", "", "old");
    let (_, unread) = email("new@example.org", "Not handled yet", "", "new");
    servers.append_with_flags(&old, "(\\Seen)").await;
    servers.append(&[unread]).await;
    let app = spawn_settings(servers.settings(Db::Sqlite, 50)).await;
    let items = inbound_count(&app, 1).await;
    assert_eq!(items[0]["outcome"], "case_created");
    let (_, later) = email("later@example.org", "Arrived later, read by a human", "", "later");
    servers.append_with_flags(&later, "(\\Seen)").await;
    let items = inbound_count(&app, 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(inbound(&app).await.len(), 2, "the old read message is history: {items:?}");
    let subjects: Vec<String> = app.get("/api/v1/cases").await.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["subject"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        subjects.contains(&"Not handled yet".to_owned())
            && subjects.contains(&"Arrived later, read by a human".to_owned()),
        "{subjects:?}"
    );
    app.running.unwrap().stop().await;
}

/// Counts of what the binary has stored, read straight from its database.
fn stored_counts(store: &caseflow_store::Store) -> (i64, i64, i64) {
    use caseflow_store::schema::{cases, inbound_messages, messages};
    use diesel::prelude::*;
    store
        .read(|c| {
            Ok::<_, caseflow_store::StoreError>((
                inbound_messages::table.count().get_result(c)?,
                cases::table.count().get_result(c)?,
                messages::table.count().get_result(c)?,
            ))
        })
        .unwrap()
}

fn serve_binary(config: &std::path::Path) -> std::process::Child {
    caseflow()
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(config.with_extension("log")).unwrap())
        .spawn()
        .expect("start caseflow serve")
}

/// `kill -9` of the server in the middle of draining a backlog, then a restart: every message
/// becomes exactly one case, and every message ends up flagged on the IMAP server.
async fn kill_9_mid_batch_loses_and_doubles_nothing(db: Db) {
    const TOTAL: usize = 1500;
    let servers = MailServers::start();
    let raws: Vec<String> =
        (0..TOTAL).map(|i| email(&format!("c{i}@example.org"), &format!("Backlog {i}"), "", "help").1).collect();
    servers.append(&raws).await;

    let url = database_url(db);
    let port = free_port();
    let config = servers.dir.join("caseflow.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\n[metrics]\nbind = \"127.0.0.1:0\"\n[database]\nurl = \"{url}\"\n\
             [email]\nsupport_addresses = [\"support@caseflow.localhost\"]\n\
             [[email.mailboxes]]\nname = \"support\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\n\
             username = \"{IMAP_USER}\"\npassword = \"{IMAP_PASSWORD}\"\nbatch_size = 50\npoll_interval_secs = 1\n",
            servers.imap_port
        ),
    )
    .unwrap();
    // The database is created (and migrated) before the server starts, so counting starts with
    // the server: waiting for its health check first let it drain the whole backlog before the
    // first count on a fast run.
    let store = caseflow_store::Store::open(
        &caseflow_store::DbUrl::parse(&url).unwrap(),
        &caseflow_store::db::PoolOptions::default(),
    )
    .unwrap();
    let mut child = serve_binary(&config);
    let at_kill = eventually(60, "part of the backlog stored", || async {
        let (inbound, _, _) = stored_counts(&store);
        (inbound >= 50).then_some(inbound)
    })
    .await;
    child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    child.wait().unwrap();
    let (_, seen_at_kill) = servers.counts().await;
    assert!((at_kill as usize) < TOTAL, "the kill must land mid-backlog (stored {at_kill} of {TOTAL})");

    let mut child = serve_binary(&config);
    eventually(120, "the whole backlog stored after the restart", || async {
        let (inbound, _, _) = stored_counts(&store);
        (inbound as usize >= TOTAL).then_some(())
    })
    .await;
    eventually(30, "every message flagged \\Seen", || async {
        (servers.counts().await == (TOTAL, TOTAL)).then_some(())
    })
    .await;
    // Let the poller go round once more: nothing may be stored twice.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (inbound, cases, messages) = stored_counts(&store);
    assert_eq!(
        (inbound, cases, messages),
        (TOTAL as i64, TOTAL as i64, TOTAL as i64),
        "killed at {at_kill} stored, {seen_at_kill} seen"
    );
}

both_backends!(db: kill_9_mid_batch_loses_and_doubles_nothing);

/// An in-process transport for driving the dispatcher directly (the real one is SMTP above).
struct FakeSender {
    sent: std::sync::Mutex<Vec<String>>,
    fail: Option<caseflow_app::outbox::SendError>,
}

impl caseflow_app::outbox::EmailSender for FakeSender {
    async fn send(&self, mail: &caseflow_app::outbox::OutgoingEmail) -> Result<(), caseflow_app::outbox::SendError> {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.sent.lock().unwrap().push(mail.outbox_id.clone());
        self.fail.clone().map_or(Ok(()), Err)
    }
}

/// Two dispatchers (two nodes) racing over the same due rows send each row once; temporary
/// failures stop after `smtp.max_attempts` with the reason on the message.
async fn outbox_claims_are_exclusive_and_retries_are_bounded(app: &TestApp) {
    let mut cases = Vec::new();
    for i in 0..6 {
        let c = case_for(app, &format!("race{i}@example.org")).await;
        app.post(&format!("/api/v1/cases/{c}/messages"), json!({"kind": "reply", "body": "hi"})).await.expect(201);
        cases.push(c);
    }
    let sender = FakeSender { sent: Default::default(), fail: None };
    let (a, b) = tokio::join!(app.app().dispatch_email_round(&sender), app.app().dispatch_email_round(&sender));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.delivered + b.delivered, 6, "{a:?} {b:?}");
    let mut sent = sender.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 6, "six sends for six rows: {sent:?}");
    sent.sort();
    sent.dedup();
    assert_eq!(sent.len(), 6, "each row sent exactly once");
    assert_eq!(app.app().dispatch_email_round(&sender).await.unwrap().delivered, 0, "nothing left to send");

    // A relay that keeps failing temporarily: retried, then given up after max_attempts (2).
    let c = case_for(app, "flaky@example.org").await;
    let r = app.post(&format!("/api/v1/cases/{c}/messages"), json!({"kind": "reply", "body": "hi"})).await;
    let mid = id(&r.expect(201));
    let flaky = FakeSender {
        sent: Default::default(),
        fail: Some(caseflow_app::outbox::SendError::Temporary("421 busy".into())),
    };
    assert_eq!(app.app().dispatch_email_round(&flaky).await.unwrap().retrying, 1);
    assert_eq!(app.app().dispatch_email_round(&flaky).await.unwrap().total_attempts(), 0, "not due before the backoff");
    let failed = eventually(15, "the second attempt after the backoff", || async {
        let r = app.app().dispatch_email_round(&flaky).await.unwrap();
        (r.failed == 1).then_some(())
    });
    failed.await;
    let m = messages(app, &c).await.into_iter().find(|m| m["id"] == mid.as_str()).unwrap();
    assert_eq!(m["delivery_status"], "failed");
    assert!(m["delivery_error"].as_str().unwrap().contains("gave up after 2 attempts: 421 busy"), "{m}");
}

mod outbox_claims {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(crate::helpers::Db::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(crate::helpers::Db::Postgres).await;
    }

    /// Without `smtp.host` no dispatcher runs, so the test drives every round itself.
    async fn run(db: crate::helpers::Db) {
        let app = crate::helpers::spawn_with(
            db,
            &[
                ("CASEFLOW__SMTP__MAX_ATTEMPTS", "2"),
                ("CASEFLOW__SMTP__RETRY_BASE_SECS", "3"),
                ("CASEFLOW__SMTP__RETRY_MAX_SECS", "3"),
            ],
        )
        .await;
        super::outbox_claims_are_exclusive_and_retries_are_bounded(&app).await;
        app.stop().await;
    }
}

/// A transport that hangs on its first message (a relay gone silent), then answers at once.
struct StallingSender {
    calls: std::sync::atomic::AtomicUsize,
    stall: std::time::Duration,
}

impl caseflow_app::outbox::EmailSender for StallingSender {
    async fn send(&self, _: &caseflow_app::outbox::OutgoingEmail) -> Result<(), caseflow_app::outbox::SendError> {
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(self.stall).await;
        }
        Ok(())
    }
}

/// A worker whose lease ran out (its relay hung) loses the row to another worker; when it
/// finally returns, its outcome is not recorded over the other's: the row is delivered once
/// in the books, attempted twice on the wire (at-least-once, same Message-ID).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_and_the_late_outcome_is_fenced_off() {
    let app =
        spawn_with(Db::Sqlite, &[("CASEFLOW__SMTP__TIMEOUT_SECS", "1"), ("CASEFLOW__SMTP__LEASE_SECS", "2")]).await;
    let c = case_for(&app, "slow@example.org").await;
    let r = app.post(&format!("/api/v1/cases/{c}/messages"), json!({"kind": "reply", "body": "hi"})).await;
    let mid = id(&r.expect(201));
    let sender = StallingSender { calls: Default::default(), stall: std::time::Duration::from_millis(5000) };
    let first = app.app().dispatch_email_round(&sender);
    let second = async {
        // The lease (2 s) has run out; the first worker is still stalled (5 s).
        tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
        app.app().dispatch_email_round(&sender).await
    };
    let (first, second) = tokio::join!(first, second);
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(second.delivered, 1, "the second worker took the row over after the lease: {second:?}");
    assert_eq!((first.delivered, first.other), (0, 1), "the late outcome was fenced off: {first:?}");
    assert_eq!(sender.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    let m = messages(&app, &c).await.into_iter().find(|m| m["id"] == mid.as_str()).unwrap();
    assert_eq!(m["delivery_status"], "sent");
    let events = app.get(&format!("/api/v1/cases/{c}/events")).await.expect(200);
    let sent = events["items"].as_array().unwrap().iter().filter(|e| e["kind"] == "message_sent").count();
    assert_eq!(sent, 1, "{events}");
    app.stop().await;
}
