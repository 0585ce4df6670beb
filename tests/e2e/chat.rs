//! Live chat over real WebSockets (tokio-tungstenite as the visitor's and the agent's
//! client): persistence before acknowledgement, ordering, duplicates, reconnect and replay,
//! typing, agent replies, and the conversation through the REST API.

use crate::both_backends;
use crate::helpers::*;
use crate::mailservers::eventually;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Stream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One WebSocket client.
pub struct Ws(Stream);

impl Ws {
    /// A visitor's socket (`/chat/ws`).
    pub async fn visitor(app: &TestApp) -> Ws {
        let url = format!("{}/chat/ws", app.base.replace("http://", "ws://"));
        Ws(tokio_tungstenite::connect_async(url).await.expect("visitor socket").0)
    }

    /// An agent's socket (`/api/v1/chat/ws`) with a bearer token.
    pub async fn agent(app: &TestApp, token: &str) -> Ws {
        let mut req = format!("{}/api/v1/chat/ws", app.base.replace("http://", "ws://")).into_client_request().unwrap();
        req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        Ws(tokio_tungstenite::connect_async(req).await.expect("agent socket").0)
    }

    pub async fn send(&mut self, v: Value) {
        self.0.send(Message::text(v.to_string())).await.expect("send frame");
    }

    /// The next JSON frame (pings are answered by the library).
    pub async fn recv(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.0.next())
                .await
                .expect("a frame within 10 s")
                .expect("socket open")
                .expect("frame");
            match frame {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
                Message::Close(c) => panic!("socket closed: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame of this type, skipping others (presence, typing, ...).
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == ty {
                return v;
            }
            assert_ne!(v["type"], "error", "unexpected error frame while waiting for {ty}: {v}");
        }
    }

    /// No frame of this type arrives within `ms`.
    pub async fn quiet(&mut self, ty: &str, ms: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, self.0.next()).await {
            if let Message::Text(t) = frame {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                assert_ne!(v["type"], ty, "unexpected {ty} frame: {v}");
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.0.close(None).await;
    }
}

/// Starts a chat and sends the first message; returns (session frame, ack).
pub async fn open_chat(v: &mut Ws, name: &str, email: Option<&str>, first: &str) -> (Value, Value) {
    v.send(json!({"type": "start", "name": name, "email": email, "topic": "technical"})).await;
    let session = v.recv_type("session").await;
    assert!(session["resume_token"].as_str().is_some_and(|t| t.len() >= 32), "{session}");
    assert!(session["case_id"].is_null(), "no case before the first message: {session}");
    v.send(json!({"type": "message", "client_id": "c-1", "body": first})).await;
    let ack = v.recv_type("ack").await;
    (session, ack)
}

async fn a_chat_reaches_the_agent_and_the_answer_comes_back(app: &TestApp) {
    let (_, agent_token) = app.agent("kim@caseflow.test", "agent").await;
    let mut agent = Ws::agent(app, &agent_token).await;
    let mut visitor = Ws::visitor(app).await;

    let (session, ack) = open_chat(&mut visitor, "Ana", Some("ana@example.org"), "My order is late").await;
    assert_eq!(ack["client_id"], "c-1");
    assert_eq!(ack["seq"], 1);
    let case_id = ack["case_id"].as_str().unwrap().to_owned();
    let number = ack["case_number"].as_i64().unwrap();
    // Persisted before the acknowledgement: the REST API has it the moment the ack arrived.
    let msgs = messages(app, &case_id).await;
    assert_eq!(msgs[0]["body_text"], "My order is late");
    assert_eq!(msgs[0]["channel"], "chat");
    assert_eq!(msgs[0]["external_id"], format!("{}:c-1", session["session_id"].as_str().unwrap()));
    let case = app.get(&format!("/api/v1/cases/{case_id}")).await.expect(200);
    assert_eq!(case["channel"], "chat");
    assert_eq!(case["status"], "new", "the greeting is not an answer: {case}");
    assert_eq!(case["topic"], "technical");
    assert_eq!(case["subject"], "My order is late");

    // The visitor sees their own line and the greeting, in order.
    let mine = visitor.recv_type("message").await;
    assert_eq!(
        (mine["seq"].as_i64(), mine["author"].as_str(), mine["client_id"].as_str()),
        (Some(1), Some("customer"), Some("c-1"))
    );
    let greeting = visitor.recv_type("message").await;
    assert_eq!(greeting["seq"], 2);
    assert_eq!(greeting["author"], "system");
    assert!(greeting["body"].as_str().unwrap().contains(&format!("#{number}")), "{greeting}");

    // The agent's socket got the conversation live.
    let first = agent.recv_type("message").await;
    assert_eq!((first["case_id"].as_str(), first["seq"].as_i64()), (Some(case_id.as_str()), Some(1)));
    assert_eq!(first["author_name"], "Ana");

    // Typing both ways, with names.
    visitor.send(json!({"type": "typing", "typing": true})).await;
    let t = agent.recv_type("typing").await;
    assert_eq!((t["case_id"].as_str(), t["typing"].as_bool()), (Some(case_id.as_str()), Some(true)));
    agent.send(json!({"type": "typing", "case_id": case_id, "typing": true})).await;
    let t = visitor.recv_type("typing").await;
    assert_eq!(t["name"], "Test Agent");

    // The agent answers on the socket: acknowledged, delivered with the agent's name.
    agent.send(json!({"type": "message", "case_id": case_id, "client_id": "a-1", "body": "Let me check."})).await;
    let aack = agent.recv_type("ack").await;
    assert_eq!(aack["seq"], 3);
    let answer = visitor.recv_type("message").await;
    assert_eq!((answer["seq"].as_i64(), answer["author"].as_str()), (Some(3), Some("agent")));
    assert_eq!(answer["author_name"], "Test Agent");
    assert_eq!(answer["body"], "Let me check.");
    visitor.send(json!({"type": "received", "seq": 3})).await;
    // An answer through the REST API reaches the socket too.
    app.post(&format!("/api/v1/cases/{case_id}/messages"), json!({"kind": "reply", "body": "Found it."}))
        .await
        .expect(201);
    let rest = visitor.recv_type("message").await;
    assert_eq!((rest["seq"].as_i64(), rest["body"].as_str()), (Some(4), Some("Found it.")));
    // A note never reaches the visitor.
    app.post(&format!("/api/v1/cases/{case_id}/messages"), json!({"kind": "note", "body": "VIP"})).await.expect(201);
    visitor.quiet("message", 300).await;

    // The confirmation marked the agent's first answer delivered (no email fallback).
    eventually(10, "the confirmed answer marked sent", || async {
        let msgs = messages(app, &case_id).await;
        let a = msgs.iter().find(|m| m["body_text"] == "Let me check.").unwrap();
        (a["delivery_status"] == "sent").then_some(())
    })
    .await;
    // The same conversation through the REST API, with the chat identity on the customer.
    let msgs = messages(app, &case_id).await;
    let seqs: Vec<Option<i64>> = msgs.iter().map(|m| m["seq"].as_i64()).collect();
    assert_eq!(seqs, [Some(1), Some(2), Some(3), Some(4), None]);
    let customer =
        app.get(&format!("/api/v1/customers/{}", case["customer"]["id"].as_str().unwrap())).await.expect(200);
    let kinds: Vec<&str> =
        customer["identities"].as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"chat_visitor") && kinds.contains(&"email"), "{kinds:?}");
    visitor.close().await;
    agent.close().await;

    // An anonymous chatter turns out to be a known customer: after the merge, one customer
    // with both channels in one history, and the visitor id leads to the merged customer.
    let mut anon = Ws::visitor(app).await;
    let (anon_session, anon_ack) = open_chat(&mut anon, "", None, "Do you ship to Norway?").await;
    anon.close().await;
    let anon_case = app.get(&format!("/api/v1/cases/{}", anon_ack["case_id"].as_str().unwrap())).await.expect(200);
    let email_case = app.new_case("lena@example.org", "Invoice copy").await;
    let target = email_case["customer"]["id"].as_str().unwrap().to_owned();
    let source = anon_case["customer"]["id"].as_str().unwrap();
    app.post(&format!("/api/v1/customers/{target}/merge"), json!({"source_id": source})).await.expect(200);
    let merged = app.get(&format!("/api/v1/customers/{target}")).await.expect(200);
    let mut channels: Vec<&str> =
        merged["cases"].as_array().unwrap().iter().map(|c| c["channel"].as_str().unwrap()).collect();
    channels.sort_unstable();
    assert_eq!(channels, ["api", "chat"]);
    let mut again = Ws::visitor(app).await;
    again.send(json!({"type": "start", "visitor_id": anon_session["visitor_id"]})).await;
    let s = again.recv_type("session").await;
    assert_eq!(s["case_id"], anon_case["id"], "the open chat case continues after the merge");
    again.send(json!({"type": "message", "client_id": "m-1", "body": "It is Lena, by the way"})).await;
    again.recv_type("ack").await;
    let case = app.get(&format!("/api/v1/cases/{}", anon_case["id"].as_str().unwrap())).await.expect(200);
    assert_eq!(case["customer_id"], target.as_str());
    again.close().await;
}

async fn duplicates_are_acknowledged_once_and_order_holds_under_load(app: &TestApp) {
    let mut agent = Ws::agent(app, &app.admin).await;
    let mut visitor = Ws::visitor(app).await;
    let (_, ack) = open_chat(&mut visitor, "Bo", None, "first").await;
    let case_id = ack["case_id"].as_str().unwrap().to_owned();
    // The same client id again (a retry after a lost ack): the same answer, nothing stored.
    visitor.send(json!({"type": "message", "client_id": "c-1", "body": "first"})).await;
    let again = visitor.recv_type("ack").await;
    assert_eq!((again["seq"].as_i64(), again["message_id"].as_str()), (Some(1), ack["message_id"].as_str()));

    // Both sides write at once, without waiting for acknowledgements.
    for i in 0..15 {
        visitor.send(json!({"type": "message", "client_id": format!("v-{i}"), "body": format!("visitor {i}")})).await;
        agent.send(json!({"type": "message", "case_id": case_id, "client_id": format!("a-{i}"), "body": format!("agent {i}")})).await;
    }
    // The visitor sees every line exactly once, in one gap-free order.
    let mut seen = vec![1, 2];
    let mut acks = 0;
    let mut last = 0;
    while seen.len() < 32 || acks < 15 {
        let f = visitor.recv().await;
        match f["type"].as_str().unwrap() {
            "ack" => acks += 1,
            "message" => {
                let s = f["seq"].as_i64().unwrap();
                if s <= 2 {
                    continue;
                }
                assert!(s > last, "out of order: {s} after {last}");
                last = s;
                seen.push(s);
            }
            "error" => panic!("error frame: {f}"),
            _ => {}
        }
    }
    assert_eq!(seen, (1..=32).collect::<Vec<i64>>());
    let msgs = messages(app, &case_id).await;
    let count_in = |prefix: &str| msgs.iter().filter(|m| m["body_text"].as_str().unwrap().starts_with(prefix)).count();
    assert_eq!((count_in("visitor "), count_in("agent "), count_in("first")), (15, 15, 1));
    // Agent frames with bad input are answered, not dropped or fatal.
    agent.send(json!({"type": "message", "case_id": case_id, "client_id": "a-bad", "body": "  "})).await;
    let e = agent.recv_type("error").await;
    assert_eq!((e["code"].as_str(), e["client_id"].as_str()), (Some("validation_failed"), Some("a-bad")));
    agent.send(json!({"type": "shout"})).await;
    assert_eq!(agent.recv_type("error").await["code"], "invalid_frame");
    visitor.close().await;
    agent.close().await;
}

async fn a_reconnect_resumes_and_replays_what_was_missed(app: &TestApp) {
    let mut visitor = Ws::visitor(app).await;
    let (session, ack) = open_chat(&mut visitor, "Cy", None, "hello").await;
    let case_id = ack["case_id"].as_str().unwrap().to_owned();
    assert_eq!(visitor.recv_type("message").await["seq"], 1);
    assert_eq!(visitor.recv_type("message").await["seq"], 2);
    visitor.close().await;

    // While the visitor is away, three answers arrive.
    for body in ["one", "two", "three"] {
        app.post(&format!("/api/v1/cases/{case_id}/messages"), json!({"kind": "reply", "body": body}))
            .await
            .expect(201);
    }
    let mut back = Ws::visitor(app).await;
    back.send(
        json!({"type": "resume", "session_id": session["session_id"], "token": session["resume_token"], "last_seq": 2}),
    )
    .await;
    let resumed = back.recv_type("session").await;
    assert_eq!(resumed["case_id"], case_id.as_str());
    assert!(resumed.get("resume_token").is_none(), "the token is given out once: {resumed}");
    let replay: Vec<String> =
        [back.recv_type("message").await, back.recv_type("message").await, back.recv_type("message").await]
            .iter()
            .map(|m| format!("{}:{}", m["seq"], m["body"].as_str().unwrap()))
            .collect();
    assert_eq!(replay, ["3:one", "4:two", "5:three"]);
    back.quiet("message", 300).await;
    // And it continues live.
    back.send(json!({"type": "message", "client_id": "c-2", "body": "thanks"})).await;
    assert_eq!(back.recv_type("ack").await["seq"], 6);
    back.close().await;

    // A wrong token opens nothing.
    let mut intruder = Ws::visitor(app).await;
    intruder.send(json!({"type": "resume", "session_id": session["session_id"], "token": "0".repeat(64)})).await;
    assert_eq!(intruder.recv_type("error").await["code"], "unauthenticated");
    intruder.send(json!({"type": "message", "client_id": "x", "body": "let me in"})).await;
    assert_eq!(intruder.recv_type("error").await["code"], "no_session");
    intruder.close().await;

    // The same visitor opening the widget again later continues the open case, without its
    // history: that is replayed only to `resume` with the session's token.
    let mut later = Ws::visitor(app).await;
    later.send(json!({"type": "start", "visitor_id": session["visitor_id"]})).await;
    let s = later.recv_type("session").await;
    assert_eq!((s["case_id"].as_str(), s["last_seq"].as_i64()), (Some(case_id.as_str()), Some(6)));
    assert_eq!(s["visitor_id"], session["visitor_id"]);
    later.quiet("message", 300).await;
    later.send(json!({"type": "message", "client_id": "c-3", "body": "one more thing"})).await;
    assert_eq!(later.recv_type("ack").await["seq"], 7);
    assert_eq!(later.recv_type("message").await["seq"], 7);

    // Once the case is closed, the chat goes on in a new case linked to it.
    app.patch(&format!("/api/v1/cases/{case_id}"), json!({"status": "solved"})).await.expect(200);
    app.patch(&format!("/api/v1/cases/{case_id}"), json!({"status": "closed"})).await.expect(200);
    later.send(json!({"type": "message", "client_id": "c-4", "body": "it broke again"})).await;
    let ack = later.recv_type("ack").await;
    let new_case = ack["case_id"].as_str().unwrap().to_owned();
    assert_ne!(new_case, case_id);
    assert_eq!(ack["seq"], 1);
    let first = later.recv_type("message").await;
    assert_eq!((first["case_id"].as_str(), first["seq"].as_i64()), (Some(new_case.as_str()), Some(1)));
    let linked = app.get(&format!("/api/v1/cases/{new_case}")).await.expect(200);
    assert_eq!(linked["linked_case_id"], case_id.as_str());
    assert_eq!(linked["channel"], "chat");
    later.close().await;

    // Knowing someone's address shows nothing of theirs.
    app.new_case("known@example.org", "Earlier").await;
    let customers = app.get("/api/v1/customers?q=known%40example.org").await.expect(200);
    let known = customers["items"][0]["id"].as_str().unwrap().to_owned();
    app.patch(&format!("/api/v1/customers/{known}"), json!({"name": "Real Name"})).await.expect(200);
    let mut guess = Ws::visitor(app).await;
    guess.send(json!({"type": "start", "email": "known@example.org"})).await;
    let s = guess.recv_type("session").await;
    assert_eq!(s["customer_name"], "", "{s}");
    assert!(s["case_id"].is_null());
    guess.close().await;
}

both_backends!(
    a_chat_reaches_the_agent_and_the_answer_comes_back,
    duplicates_are_acknowledged_once_and_order_holds_under_load,
    a_reconnect_resumes_and_replays_what_was_missed,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_refuse_what_they_should() {
    let app = spawn_with(
        Db::Sqlite,
        &[("CASEFLOW__WEB_FORM__PER_IP_BURST", "1"), ("CASEFLOW__WEB_FORM__PER_IP_PER_MINUTE", "1")],
    )
    .await;
    // The agent socket needs credentials; without an Upgrade it answers with a JSON error.
    let r = app.call(reqwest::Method::GET, "/api/v1/chat/ws", None, None).await;
    r.expect_error(401, "unauthenticated");
    let r = app.get("/api/v1/chat/ws").await;
    r.expect_error(400, "websocket_required");
    let mut req = format!("{}/api/v1/chat/ws", app.base.replace("http://", "ws://")).into_client_request().unwrap();
    req.headers_mut().insert("authorization", "Bearer nope".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err(), "a bad token gets no socket");
    // Browsers authenticate with the subprotocol.
    let mut req = format!("{}/api/v1/chat/ws", app.base.replace("http://", "ws://")).into_client_request().unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", format!("caseflow, caseflow.bearer.{}", app.admin).parse().unwrap());
    let (ws, res) = tokio_tungstenite::connect_async(req).await.expect("subprotocol auth");
    assert_eq!(res.headers()["sec-websocket-protocol"], "caseflow");
    drop(ws);

    // A revoked token loses its socket at the next frame.
    let created =
        app.post("/api/v1/api-tokens", json!({"name": "chat bot", "scopes": ["read", "write"]})).await.expect(201);
    let mut bot = Ws::agent(&app, created["token"].as_str().unwrap()).await;
    bot.send(json!({"type": "history", "case_id": "none"})).await;
    assert_eq!(bot.recv_type("error").await["code"], "not_found");
    app.delete(&format!("/api/v1/api-tokens/{}", created["id"].as_str().unwrap())).await.expect(200);
    bot.send(json!({"type": "typing", "case_id": "none", "typing": true})).await;
    assert_eq!(bot.recv_type("error").await["code"], "unauthenticated");
    let closed = tokio::time::timeout(Duration::from_secs(5), bot.0.next()).await.expect("closed in time");
    assert!(matches!(closed, None | Some(Ok(Message::Close(_))) | Some(Err(_))), "{closed:?}");

    // New chats are limited per IP like web-form submissions.
    let mut v = Ws::visitor(&app).await;
    v.send(json!({"type": "start", "name": "A"})).await;
    v.recv_type("session").await;
    let mut w = Ws::visitor(&app).await;
    w.send(json!({"type": "start", "name": "B"})).await;
    assert_eq!(w.recv_type("error").await["code"], "rate_limited");
    // Garbage and oversized input get an error frame; the socket stays usable.
    v.send(json!({"type": "message", "client_id": "c 1", "body": "x"})).await;
    assert_eq!(v.recv_type("error").await["code"], "validation_failed");
    v.send(json!({"type": "message", "client_id": "c-big", "body": "x".repeat(9000)})).await;
    let e = v.recv_type("error").await;
    assert_eq!((e["code"].as_str(), e["client_id"].as_str()), (Some("validation_failed"), Some("c-big")));
    v.0.send(Message::text("{not json")).await.unwrap();
    assert_eq!(v.recv_type("error").await["code"], "invalid_frame");
    v.send(json!({"type": "message", "client_id": "c-ok", "body": "still here"})).await;
    assert_eq!(v.recv_type("ack").await["seq"], 1);
    v.close().await;
    w.close().await;
    app.stop().await;
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    raw.split("\r\n\r\n").next()?.split("\r\n").find(|l| l.starts_with(&prefix)).map(|l| &l[prefix.len()..])
}

async fn sent_count(servers: &crate::mailservers::MailServers, n: usize) -> Vec<String> {
    eventually(20, &format!("{n} messages in the SMTP sink"), || async {
        let s = servers.sent();
        (s.len() >= n).then(|| s.into_iter().map(|m| String::from_utf8(m).unwrap()).collect::<Vec<_>>())
    })
    .await
}

/// When the visitor leaves, answers go by email (real SMTP sink), and the customer's email
/// reply (real IMAP server) threads back into the chat case; the web form's acknowledgement
/// leaves the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_continues_by_email_and_the_reply_threads_back() {
    use crate::mailservers::MailServers;
    let servers = MailServers::start();
    let mut settings = servers.settings(Db::Sqlite, 50);
    settings.chat.email_after_secs = 3600;
    let app = spawn_settings(settings).await;

    let mut visitor = Ws::visitor(&app).await;
    let (session, ack) = open_chat(&mut visitor, "Eve", Some("eve@example.org"), "Where is my parcel?").await;
    let case_id = ack["case_id"].as_str().unwrap().to_owned();
    let number = ack["case_number"].as_i64().unwrap();
    visitor.recv_type("message").await;
    visitor.recv_type("message").await;
    visitor.send(json!({"type": "received", "seq": 2})).await;
    // Answered while the visitor is there: confirmed in the chat, never emailed.
    app.post(&format!("/api/v1/cases/{case_id}/messages"), json!({"kind": "reply", "body": "Checking now."}))
        .await
        .expect(201);
    assert_eq!(visitor.recv_type("message").await["seq"], 3);
    visitor.send(json!({"type": "received", "seq": 3})).await;
    eventually(10, "the live answer marked sent", || async {
        let msgs = messages(&app, &case_id).await;
        (msgs.iter().filter(|m| m["delivery_status"] == "sent").count() == 2).then_some(())
    })
    .await;

    // The visitor ends the chat; the next answer goes by email at once.
    visitor.send(json!({"type": "end"})).await;
    assert_eq!(visitor.recv_type("ended").await["type"], "ended");
    app.post(&format!("/api/v1/cases/{case_id}/messages"), json!({"kind": "reply", "body": "It left our warehouse."}))
        .await
        .expect(201);
    let sent = sent_count(&servers, 1).await;
    assert_eq!(sent.len(), 1, "only the answer the visitor did not see is emailed");
    let raw = &sent[0];
    assert!(header(raw, "To").unwrap().contains("eve@example.org"), "{raw}");
    assert!(raw.contains("It left our warehouse."), "{raw}");
    let subject = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap().subject().unwrap().to_owned();
    assert_eq!(subject, format!("Re: Where is my parcel? [#{number}]"));
    let our_id = header(raw, "Message-ID").unwrap().trim_matches(['<', '>']).to_owned();

    // The customer answers the email: it joins the chat case.
    let (_, answer) =
        email("eve@example.org", "Re: parcel", &format!("In-Reply-To: <{our_id}>\r\n"), "Thanks, got it!");
    servers.append(&[answer]).await;
    let msgs = eventually(30, "the email reply in the chat case", || async {
        let msgs = messages(&app, &case_id).await;
        msgs.iter().any(|m| m["body_text"] == "Thanks, got it!").then_some(msgs)
    })
    .await;
    let reply = msgs.iter().find(|m| m["body_text"] == "Thanks, got it!").unwrap();
    assert_eq!((reply["channel"].as_str(), reply["thread_rule"].as_str()), (Some("email"), Some("message_id")));

    // Coming back to the widget re-opens the chat: replies go to the widget again.
    let mut back = Ws::visitor(&app).await;
    back.send(
        json!({"type": "resume", "session_id": session["session_id"], "token": session["resume_token"], "last_seq": 4}),
    )
    .await;
    back.recv_type("session").await;
    back.close().await;

    // The web form's acknowledgement leaves through the same outbox, marked automatic.
    let r = app
        .call(
            reqwest::Method::POST,
            "/api/v1/public/support",
            None,
            Some(json!({"name": "Fay", "email": "fay@example.org", "subject": "Refund", "message": "Please", "topic": "billing"})),
        )
        .await
        .expect(201);
    let sent = sent_count(&servers, 2).await;
    let ack_mail = sent.iter().find(|m| m.contains("fay@example.org")).expect("acknowledgement sent");
    assert_eq!(header(ack_mail, "Auto-Submitted"), Some("auto-replied"), "{ack_mail}");
    assert!(ack_mail.contains(&format!("#{}", r["case_number"])), "{ack_mail}");
    app.stop().await;
}

/// A visitor who closes the tab without ending the chat gets the unseen answer by email after
/// `chat.email_after_secs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unseen_chat_answer_falls_back_to_email() {
    use crate::mailservers::MailServers;
    let servers = MailServers::start();
    let mut settings = servers.settings(Db::Sqlite, 50);
    settings.email.mailboxes.clear();
    settings.chat.email_after_secs = 1;
    settings.chat.greeting = String::new();
    let app = spawn_settings(settings).await;
    let mut visitor = Ws::visitor(&app).await;
    let (_, ack) = open_chat(&mut visitor, "Gus", Some("gus@example.org"), "Hello?").await;
    let case_id = ack["case_id"].as_str().unwrap().to_owned();
    visitor.close().await;
    app.post(
        &format!("/api/v1/cases/{case_id}/messages"),
        json!({"kind": "reply", "body": "Hi Gus, here is the answer."}),
    )
    .await
    .expect(201);
    let sent = sent_count(&servers, 1).await;
    assert!(sent[0].contains("Hi Gus, here is the answer."), "{}", sent[0]);
    assert!(header(&sent[0], "To").unwrap().contains("gus@example.org"));
    app.stop().await;
}
