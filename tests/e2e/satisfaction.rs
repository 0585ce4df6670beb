//! Customer satisfaction against the real servers: a case that came by email (real Dovecot)
//! is solved, its survey reaches the real SMTP sink a day later and only once, the link opens
//! the rating page without recording anything, the customer's answer lands on the case (for
//! the team and agent who had it), on the timeline, at a webhook receiver, and a bad answer
//! alerts the team's supervisors only. Reopened, API-made and long-solved cases get no survey.

use crate::both_backends;
use crate::helpers::*;
use caseflow_core::FixedClock;
use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

fn monday_nine() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap()
}

async fn html(app: &TestApp, method: reqwest::Method, path: &str, form: Option<&str>) -> (u16, String) {
    let mut req = app.client.request(method, format!("{}{path}", app.base));
    if let Some(f) = form {
        req = req.header("Content-Type", "application/x-www-form-urlencoded").body(f.to_owned());
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let ctype = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(ctype.starts_with("text/html"), "{path}: {ctype}");
    (status, r.text().await.expect("body"))
}

/// Opens a case through the JSON web form; returns its id.
async fn web_case(app: &TestApp, email: &str, subject: &str) -> String {
    let form =
        json!({"name": "Wes Form", "email": email, "subject": subject, "message": "Hello there.", "topic": "general"});
    let r = app.call(reqwest::Method::POST, "/api/v1/public/support", None, Some(form)).await.expect(201);
    let n = r["case_number"].as_i64().expect("number");
    let cases = app.get("/api/v1/cases?limit=100").await.expect(200);
    id(cases["items"].as_array().expect("cases").iter().find(|c| c["number"] == n).expect("case"))
}

async fn set_status(app: &TestApp, case_id: &str, to: &str) {
    app.patch(&format!("/api/v1/cases/{case_id}"), json!({"status": to})).await.expect(200);
}

/// An agent (the admin) answers the customer and solves the case in the same step.
async fn answer_and_solve(app: &TestApp, case_id: &str) {
    app.post(
        &format!("/api/v1/cases/{case_id}/messages"),
        json!({"kind": "reply", "body": "Sorted, thank you for waiting.", "status": "solved"}),
    )
    .await
    .expect(201);
}

/// The alerts of `kind` the holder of `token` sees.
async fn alerts_of_kind(app: &TestApp, token: String, kind: &str) -> Vec<Value> {
    let r = app.call(reqwest::Method::GET, "/api/v1/alerts", Some(&token), None).await.expect(200);
    r["items"].as_array().cloned().unwrap_or_default().into_iter().filter(|a| a["kind"] == kind).collect()
}

async fn survey_of(app: &TestApp, case_id: &str) -> Resp {
    app.get(&format!("/api/v1/cases/{case_id}/satisfaction")).await
}

async fn a_solved_email_case_is_surveyed_once_and_rated_privately(db: Db) {
    let servers = crate::mailservers::MailServers::start();
    let mut s = servers.settings(db, 50);
    s.server.public_url = "https://help.example.org/".into();
    s.satisfaction.tick_ms = 600_000;
    s.webhooks.allow_private_targets = true;
    s.webhooks.poll_ms = 100;
    let clock = Arc::new(FixedClock::new(monday_nine()));
    let mut app = spawn_with_clock(s, clock.clone()).await;
    let (url, hooks, hook_server) = crate::webhooks::receiver_with(false).await;
    app.post("/api/v1/webhooks", json!({"url": url, "events": ["case.rated"]})).await.expect(201);
    let billing = app.post("/api/v1/teams", json!({"name": "Billing"})).await.expect(201);
    let team = id(&billing);
    let ann = app
        .post(
            "/api/v1/agents",
            json!({"email": "ann@example.com", "name": "Ann Agent", "role": "agent", "password": PASSWORD, "team_id": team}),
        )
        .await
        .expect(201);
    let ann_token = app.login("ann@example.com", PASSWORD).await;
    app.post(
        "/api/v1/agents",
        json!({"email": "sue@example.com", "name": "Sue Supervisor", "role": "supervisor", "password": PASSWORD, "team_id": team}),
    )
    .await
    .expect(201);
    let (otto_id, _) = app.agent("otto@example.com", "supervisor").await;

    let (_, raw) = email("Dana Example <dana@example.org>", "Invoice twice", "", "I was charged twice.");
    servers.append(&[raw]).await;
    let case = eventually(30, "the email case", || async {
        let l = app.get("/api/v1/cases").await.expect(200);
        l["items"].as_array().and_then(|a| a.first().cloned())
    })
    .await;
    let (case_id, number) = (id(&case), case["number"].as_i64().expect("number"));
    app.patch(&format!("/api/v1/cases/{case_id}"), json!({"team_id": team, "assignee_id": id(&ann)})).await.expect(200);
    app.call(
        reqwest::Method::POST,
        &format!("/api/v1/cases/{case_id}/messages"),
        Some(&ann_token),
        Some(json!({"kind": "reply", "body": "Refunded the second charge.", "status": "solved"})),
    )
    .await
    .expect(201);
    eventually(30, "the reply in the SMTP sink", || async { (servers.sent().len() == 1).then_some(()) }).await;

    // Not before the delay (a day); then once, however often the sender runs.
    clock.advance(Duration::hours(23));
    app.relogin().await;
    assert_eq!(app.app().satisfaction_tick().await.expect("tick").sent, 0);
    survey_of(&app, &case_id).await.expect_error(404, "not_found");
    let _ = ann_token;
    clock.advance(Duration::hours(2));
    app.relogin().await;
    assert_eq!(app.app().satisfaction_tick().await.expect("tick").sent, 1);
    // A day on: sessions from this morning have expired.
    let (sue, other_supervisor) =
        (app.login("sue@example.com", PASSWORD).await, app.login("otto@example.com", PASSWORD).await);
    let ann_token = app.login("ann@example.com", PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(app.app().satisfaction_tick().await.expect("tick").sent, 0);
    }
    let sent = eventually(30, "the survey in the SMTP sink", || async {
        let s = servers.sent();
        (s.len() == 2).then_some(s)
    })
    .await;
    // The sink's files are not in arrival order: the survey is the one that is not Ann's reply.
    let texts: Vec<String> = sent.iter().map(|m| String::from_utf8_lossy(m).to_string()).collect();
    let text = texts.iter().find(|t| !t.contains("Refunded the second charge")).expect("the survey").clone();
    let parsed = mail_parser::MessageParser::default().parse(text.as_bytes()).expect("parsable");
    assert_eq!(parsed.subject(), Some(format!("Re: Invoice twice [#{number}]").as_str()));
    assert_eq!(parsed.to().and_then(|a| a.first()).and_then(|a| a.address()), Some("dana@example.org"));
    assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
    let body = parsed.body_text(0).expect("text").to_string();
    assert!(body.contains("Hello Dana Example,") && body.contains(&format!("#{number}")), "{body}");
    let prefix = "https://help.example.org/satisfaction/";
    let at = body.find(prefix).expect("a survey link");
    let token: String = body[at + prefix.len()..].chars().take_while(char::is_ascii_hexdigit).collect();
    assert_eq!(token.len(), 64, "{body}");
    assert!(
        body.contains(&format!("{prefix}{token}?rating=good")) && body.contains(&format!("{prefix}{token}?rating=bad"))
    );

    // The desk sees the survey on the case, but not a working link.
    let msgs = messages(&app, &case_id).await;
    let on_case =
        msgs.iter().find(|m| m["body_text"].as_str().is_some_and(|b| b.contains("/satisfaction/"))).expect("survey");
    assert_eq!(on_case["author_kind"], "system");
    assert!(!on_case["body_text"].as_str().unwrap_or_default().contains(&token), "{on_case}");
    let survey = survey_of(&app, &case_id).await.expect(200);
    assert_eq!((&survey["channel"], &survey["rating"]), (&json!("email"), &Value::Null), "{survey}");

    // Opening the link (a mail scanner would) records nothing; the page shows the case and
    // preselects the answer of the link.
    let (status, page) = html(&app, reqwest::Method::GET, &format!("/satisfaction/{token}?rating=bad"), None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("#{number}</strong>: Invoice twice")), "{page}");
    assert!(page.contains("value=\"bad\" required checked"), "{page}");
    assert_eq!(survey_of(&app, &case_id).await.expect(200)["rating"], Value::Null);

    // The answer, sent from the page.
    let (status, page) = html(
        &app,
        reqwest::Method::POST,
        &format!("/satisfaction/{token}"),
        Some("rating=bad&comment=Still+charged+%3Cb%3Etwice%3C%2Fb%3E"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Thank you! We have your answer: Bad"), "{page}");
    assert!(page.contains("Still charged &lt;b&gt;twice&lt;/b&gt;"), "escaped: {page}");
    let survey = survey_of(&app, &case_id).await.expect(200);
    assert_eq!(survey["rating"], "bad");
    assert_eq!(survey["comment"], "Still charged <b>twice</b>");
    assert_eq!((&survey["agent_id"], &survey["team_id"]), (&ann["id"], &billing["id"]), "{survey}");

    // On the timeline, as the customer's.
    let events = app.get(&format!("/api/v1/cases/{case_id}/events?limit=100")).await.expect(200);
    let rated: Vec<&Value> =
        events["items"].as_array().expect("events").iter().filter(|e| e["kind"] == "case_rated").collect();
    assert_eq!(rated.len(), 1, "{events}");
    assert_eq!((&rated[0]["actor_kind"], &rated[0]["data"]["rating"]), (&json!("customer"), &json!("bad")));
    assert!(events["items"].as_array().expect("events").iter().any(|e| e["kind"] == "satisfaction_survey_sent"));

    // A bad answer alerts the team's supervisor, not another team's, not the agent.
    let alerts_of = |token: String| alerts_of_kind(&app, token, "bad_rating");
    let seen = alerts_of(sue.clone()).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0]["message"].as_str().unwrap_or_default().contains(&format!("Case #{number}")), "{seen:?}");
    assert!(alerts_of(ann_token.clone()).await.is_empty());
    assert!(alerts_of(other_supervisor.clone()).await.is_empty());

    // The webhook.
    let delivered = eventually(30, "case.rated at the receiver", || async {
        let all: Vec<Value> =
            hooks.lock().unwrap().iter().map(|r| serde_json::from_str(&r.body).unwrap_or(Value::Null)).collect();
        (!all.is_empty()).then_some(all)
    })
    .await;
    assert_eq!(delivered[0]["type"], "case.rated");
    assert_eq!((&delivered[0]["case_id"], &delivered[0]["data"]["rating"]), (&json!(case_id), &json!("bad")));

    // Changed to good through the JSON endpoint: recorded, no second alert; the console counts
    // the answer as it stands, for Ann and Billing.
    let r = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/public/satisfaction/{token}"),
            None,
            Some(json!({"rating": "good", "comment": "They called me back, all fine."})),
        )
        .await
        .expect(200);
    assert_eq!((&r["rating"], &r["case_number"]), (&json!("good"), &json!(number)));
    assert_eq!(alerts_of(sue.clone()).await.len(), 1);
    let events = app.get(&format!("/api/v1/cases/{case_id}/events?limit=100")).await.expect(200);
    let last = events["items"].as_array().expect("events").iter().rev().find(|e| e["kind"] == "case_rated").cloned();
    assert_eq!(last.map(|e| e["data"]["previous"].clone()), Some(json!("bad")));
    let o = app.call(reqwest::Method::GET, "/api/v1/stats/overview", Some(&sue), None).await.expect(200);
    let sat = &o["satisfaction"];
    assert_eq!((&sat["good"], &sat["bad"], &sat["score"]), (&json!(1), &json!(0), &json!(100.0)), "{sat}");
    assert_eq!((&sat["per_agent"][0]["name"], &sat["per_agent"][0]["good"]), (&json!("Ann Agent"), &json!(1)), "{sat}");
    assert_eq!(sat["per_team"][0]["name"], "Billing", "{sat}");
    let none = app.get("/api/v1/stats/overview?team=none").await.expect(200);
    assert_eq!(none["satisfaction"]["good"], 0, "another team's answer is not counted");

    // The case moves on to Otto; the answer changes back to bad. The credit stays with Ann and
    // Billing, and no second alert is raised while the first is unacknowledged; once it is
    // acknowledged, a new bad answer raises one again.
    app.patch(&format!("/api/v1/cases/{case_id}"), json!({"assignee_id": otto_id})).await.expect(200);
    let rate_json = |rating: &'static str| {
        let (app, token) = (&app, token.clone());
        async move {
            app.call(
                reqwest::Method::POST,
                &format!("/api/v1/public/satisfaction/{token}"),
                None,
                Some(json!({"rating": rating})),
            )
            .await
            .expect(200)
        }
    };
    rate_json("bad").await;
    let survey = survey_of(&app, &case_id).await.expect(200);
    assert_eq!(
        (&survey["rating"], &survey["agent_id"], &survey["team_id"]),
        (&json!("bad"), &ann["id"], &billing["id"])
    );
    let alerts = alerts_of(sue.clone()).await;
    assert_eq!(alerts.len(), 1, "toggling does not raise another: {alerts:?}");
    app.call(reqwest::Method::POST, &format!("/api/v1/alerts/{}/acknowledge", id(&alerts[0])), Some(&sue), None)
        .await
        .expect(200);
    rate_json("good").await;
    rate_json("bad").await;
    assert_eq!(alerts_of(sue.clone()).await.len(), 2);

    // The customer answers the survey email, quoting it: the desk sees the quote, not the link.
    let quoted = format!("Thanks!\r\n\r\n> Good, I'm satisfied: {prefix}{token}?rating=good\r\n");
    let (_, reply) = email("dana@example.org", &format!("Re: Invoice twice [#{number}]"), "", &quoted);
    servers.append(&[reply]).await;
    let msgs = eventually(30, "the customer's reply on the case", || async {
        let m = messages(&app, &case_id).await;
        (m.iter().filter(|m| m["direction"] == "inbound").count() == 2).then_some(m)
    })
    .await;
    let all = serde_json::to_string(&msgs).expect("json");
    assert!(!all.contains(&token), "a quoted link reaches the desk: {all}");
    assert!(msgs.iter().filter(|m| m["direction"] == "inbound").any(|m| m.to_string().contains("/satisfaction/…")));

    // Wrong input, unknown and expired links.
    app.call(
        reqwest::Method::POST,
        &format!("/api/v1/public/satisfaction/{token}"),
        None,
        Some(json!({"rating": "meh"})),
    )
    .await
    .expect_error(422, "validation_failed");
    let (status, page) = html(&app, reqwest::Method::POST, &format!("/satisfaction/{token}"), Some("comment=x")).await;
    assert_eq!(status, 422, "no rating chosen: {page}");
    let unknown = "f".repeat(64);
    app.call(reqwest::Method::GET, &format!("/api/v1/public/satisfaction/{unknown}"), None, None)
        .await
        .expect_error(404, "not_found");
    assert_eq!(html(&app, reqwest::Method::GET, &format!("/satisfaction/{unknown}"), None).await.0, 404);
    clock.advance(Duration::days(29));
    app.relogin().await;
    app.call(reqwest::Method::GET, &format!("/api/v1/public/satisfaction/{token}"), None, None)
        .await
        .expect_error(410, "expired");
    app.call(
        reqwest::Method::POST,
        &format!("/api/v1/public/satisfaction/{token}"),
        None,
        Some(json!({"rating": "bad"})),
    )
    .await
    .expect_error(410, "expired");
    assert_eq!(html(&app, reqwest::Method::POST, &format!("/satisfaction/{token}"), Some("rating=bad")).await.0, 410);
    assert_eq!(survey_of(&app, &case_id).await.expect(200)["rating"], "bad", "an expired link changes nothing");
    assert_eq!(servers.sent().len(), 2, "one survey, ever");
    hook_server.stop(true).await;
    app.stop().await;
}

/// Cases reopened before the delay are surveyed only when solved again; cases made through the
/// API, and cases solved longer ago than the window, never are.
async fn only_cases_still_solved_after_the_delay_are_surveyed(db: Db) {
    let clock = Arc::new(FixedClock::new(monday_nine()));
    let mut app = spawn_with_clock(
        settings(db, &[("CASEFLOW__SATISFACTION__TICK_MS", "600000"), ("CASEFLOW__SATISFACTION__DELAY_SECS", "3600")]),
        clock.clone(),
    )
    .await;
    let reopened = web_case(&app, "wes@example.org", "Reopened").await;
    let long_ago = web_case(&app, "old@example.org", "Long ago").await;
    for c in [&reopened, &long_ago] {
        answer_and_solve(&app, c).await;
    }
    // The long-solved one: past delay + window (a week) before any sender runs.
    clock.advance(Duration::minutes(30));
    app.relogin().await;
    set_status(&app, &reopened, "open").await;
    clock.advance(Duration::days(8));
    app.relogin().await;
    // Within the window now: an answered case made through the API, and a web case solved
    // without a word to the customer (spam, a duplicate).
    let api = id(&app.new_case("api@example.org", "Made by an integrator").await);
    answer_and_solve(&app, &api).await;
    let unanswered = web_case(&app, "spam@example.org", "Cheap watches").await;
    set_status(&app, &unanswered, "solved").await;
    clock.advance(Duration::hours(2));
    app.relogin().await;
    assert_eq!(app.app().satisfaction_tick().await.expect("tick").sent, 0);
    for c in [&reopened, &long_ago, &api, &unanswered] {
        survey_of(&app, c).await.expect_error(404, "not_found");
    }
    // Solved again: surveyed an hour later, by email (the web form's channel for replies).
    set_status(&app, &reopened, "solved").await;
    clock.advance(Duration::minutes(59));
    app.relogin().await;
    assert_eq!(app.app().satisfaction_tick().await.expect("tick").sent, 0);
    clock.advance(Duration::minutes(2));
    app.relogin().await;
    assert_eq!(app.app().satisfaction_tick().await.expect("tick").sent, 1);
    assert_eq!(survey_of(&app, &reopened).await.expect(200)["channel"], "web");
    // Reopened and solved once more: still one survey per case.
    set_status(&app, &reopened, "open").await;
    set_status(&app, &reopened, "solved").await;
    clock.advance(Duration::hours(2));
    app.relogin().await;
    assert_eq!(app.app().satisfaction_tick().await.expect("tick").sent, 0);
    let surveys = messages(&app, &reopened)
        .await
        .iter()
        .filter(|m| m["body_text"].as_str().is_some_and(|b| b.contains("/satisfaction/")))
        .count();
    assert_eq!(surveys, 1);
    survey_of(&app, &api).await.expect_error(404, "not_found");
    app.stop().await;
}

both_backends!(
    db: a_solved_email_case_is_surveyed_once_and_rated_privately,
    only_cases_still_solved_after_the_delay_are_surveyed
);

/// The token of the survey link in a chat line (the visitor's copy is the working one).
fn token_in(body: &str) -> String {
    let at = body.find("/satisfaction/").expect("a survey link") + "/satisfaction/".len();
    body[at..].chars().take_while(char::is_ascii_hexdigit).collect()
}

/// Opens a chat, solves its case and moves a day on: the survey arrives in the conversation,
/// live, with a working link. Returns (case id, case number, token).
/// With `watch_desk`, an agent's chat socket open at the time gets the line with the link
/// masked.
async fn surveyed_chat(
    app: &mut TestApp,
    clock: &FixedClock,
    visitor: &mut crate::chat::Ws,
    watch_desk: bool,
) -> (String, i64, String) {
    visitor.send(json!({"type": "start", "name": "Vic Visitor"})).await;
    visitor.recv_type("session").await;
    visitor.send(json!({"type": "message", "client_id": "v-1", "body": "My parcel is lost."})).await;
    let ack = visitor.recv_type("ack").await;
    let case_id = ack["case_id"].as_str().expect("case").to_owned();
    let number = ack["case_number"].as_i64().expect("number");
    answer_and_solve(app, &case_id).await;
    clock.advance(Duration::hours(25));
    app.relogin().await;
    let mut desk = if watch_desk {
        let ws = crate::chat::Ws::agent(app, &app.admin.clone()).await;
        // The server subscribes the socket just after the handshake.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        Some(ws)
    } else {
        None
    };
    assert_eq!(app.app().satisfaction_tick().await.expect("tick").sent, 1);
    let line = loop {
        let m = visitor.recv_type("message").await;
        if m["body"].as_str().is_some_and(|b| b.contains("/satisfaction/")) {
            break m;
        }
    };
    assert_eq!(line["author"], "system", "{line}");
    let token = token_in(line["body"].as_str().unwrap_or_default());
    assert_eq!(token.len(), 64, "{line}");
    if let Some(mut ws) = desk.take() {
        let seen = loop {
            let m = ws.recv_type("message").await;
            if m["body"].as_str().is_some_and(|b| b.contains("/satisfaction/")) {
                break m;
            }
        };
        assert_eq!(seen["message_id"], line["message_id"]);
        assert!(!seen["body"].as_str().unwrap_or_default().contains(&token), "the desk's socket: {seen}");
        assert!(seen["body"].as_str().unwrap_or_default().contains("/satisfaction/…?rating=good"), "{seen}");
        // The conversation replayed to the desk: masked as well.
        ws.send(json!({"type": "history", "case_id": case_id, "after_seq": 0})).await;
        let history = ws.recv_type("history").await;
        let lines = history["lines"].as_array().expect("lines");
        assert!(lines.iter().any(|l| l["body"].as_str().is_some_and(|b| b.contains("/satisfaction/…"))), "{history}");
        assert!(!history.to_string().contains(&token), "the desk's history: {history}");
        ws.close().await;
    }
    (case_id, number, token)
}

/// A chat case is surveyed in the conversation (the visitor is still there, without an email
/// address); the desk's copy of the line, live and replayed, has no working link.
async fn a_chat_is_surveyed_in_the_conversation(db: Db) {
    let clock = Arc::new(FixedClock::new(monday_nine()));
    let mut app = spawn_with_clock(settings(db, &[("CASEFLOW__SATISFACTION__TICK_MS", "600000")]), clock.clone()).await;
    let mut visitor = crate::chat::Ws::visitor(&app).await;
    let (case_id, number, token) = surveyed_chat(&mut app, &clock, &mut visitor, true).await;
    let desk = messages(&app, &case_id).await;
    let copy =
        desk.iter().find(|m| m["body_text"].as_str().is_some_and(|b| b.contains("/satisfaction/"))).expect("line");
    assert_eq!(copy["channel"], "chat");
    assert!(!copy["body_text"].as_str().unwrap_or_default().contains(&token));
    let r = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/public/satisfaction/{token}"),
            None,
            Some(json!({"rating": "good"})),
        )
        .await
        .expect(200);
    assert_eq!((&r["case_number"], &r["rating"], &r["comment"]), (&json!(number), &json!("good"), &Value::Null));
    let survey = survey_of(&app, &case_id).await.expect(200);
    assert_eq!((&survey["channel"], &survey["rating"]), (&json!("chat"), &json!("good")));
    visitor.close().await;
    app.stop().await;
}

/// An anonymous visitor who has left cannot be reached: nothing is sent (no delivery fails
/// for it), the survey is recorded as unreachable and the case is not looked at again.
async fn an_anonymous_chat_that_ended_is_not_surveyed(db: Db) {
    let clock = Arc::new(FixedClock::new(monday_nine()));
    let mut app = spawn_with_clock(settings(db, &[("CASEFLOW__SATISFACTION__TICK_MS", "600000")]), clock.clone()).await;
    let mut visitor = crate::chat::Ws::visitor(&app).await;
    visitor.send(json!({"type": "start", "name": "Anon"})).await;
    visitor.recv_type("session").await;
    visitor.send(json!({"type": "message", "client_id": "v-1", "body": "Quick question."})).await;
    let case_id = visitor.recv_type("ack").await["case_id"].as_str().expect("case").to_owned();
    visitor.send(json!({"type": "end"})).await;
    visitor.recv_type("ended").await;
    answer_and_solve(&app, &case_id).await;
    clock.advance(Duration::hours(25));
    app.relogin().await;
    let r = app.app().satisfaction_tick().await.expect("tick");
    assert_eq!((r.sent, r.unreachable), (0, 1));
    assert_eq!(app.app().satisfaction_tick().await.expect("tick").considered, 0, "not looked at again");
    let survey = survey_of(&app, &case_id).await.expect(200);
    assert_eq!((&survey["status"], &survey["channel"]), (&json!("unreachable"), &json!("chat")), "{survey}");
    let events = app.get(&format!("/api/v1/cases/{case_id}/events?limit=100")).await.expect(200);
    let kinds: Vec<&str> =
        events["items"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(
        kinds.contains(&"satisfaction_survey_skipped") && !kinds.contains(&"satisfaction_survey_sent"),
        "{kinds:?}"
    );
    let msgs = messages(&app, &case_id).await;
    assert!(!msgs.iter().any(|m| m["body_text"].as_str().is_some_and(|b| b.contains("/satisfaction/"))));
    app.stop().await;
}

both_backends!(db: a_chat_is_surveyed_in_the_conversation, an_anonymous_chat_that_ended_is_not_surveyed);

/// In Chromium: a bad answer reaches the supervisor's console live (alert, figures) and the
/// case view (panel and timeline) shows it with its comment, as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rating_shows_in_the_console_and_the_case_view() {
    use crate::browser::Browser;
    let clock = Arc::new(FixedClock::new(Utc::now()));
    let mut app =
        spawn_with_clock(settings(Db::Sqlite, &[("CASEFLOW__SATISFACTION__TICK_MS", "600000")]), clock.clone()).await;
    let mut visitor = crate::chat::Ws::visitor(&app).await;
    let (case_id, number, token) = surveyed_chat(&mut app, &clock, &mut visitor, false).await;
    app.agent("sue.supervisor@caseflow.test", "supervisor").await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/app", app.base)).await;
    browser.type_into("#cf-email", "sue.supervisor@caseflow.test").await;
    browser.type_into("#cf-password", PASSWORD).await;
    browser.click("#cf-login-submit").await;
    browser.find("#cf-inbox-title").await;
    browser.click("#cf-nav-supervisor").await;
    browser.wait_text("#cf-csat-total", "0 good, 0 bad").await;
    app.call(
        reqwest::Method::POST,
        &format!("/api/v1/public/satisfaction/{token}"),
        None,
        Some(json!({"rating": "bad", "comment": "Nobody <b>found</b> it."})),
    )
    .await
    .expect(200);
    let log = browser.wait_text("#cf-alerts", &format!("Case #{number}")).await;
    assert!(log.to_lowercase().contains("bad rating"), "{log}");
    browser.wait_text("#cf-csat-total", "0 % satisfied · 0 good, 1 bad").await;
    browser.wait_text("#cf-csat-agents", "Unassigned").await;
    browser.script("document.getElementById('cf-sec-csat').scrollIntoView(); return true;").await;
    browser.screenshot("supervisor-satisfaction").await;
    browser.goto(&format!("{}/app#/case/{case_id}", app.base)).await;
    browser.wait_text("#cf-csat", "Nobody <b>found</b> it.").await;
    browser.wait_text("#cf-timeline", "Customer rated the support bad").await;
    assert_eq!(browser.script("return document.querySelectorAll('#cf-csat b, #cf-timeline b').length;").await, 0);
    browser.screenshot("case-satisfaction").await;
    // The customer's page: the answer given, changeable.
    browser.goto(&format!("{}/satisfaction/{token}", app.base)).await;
    browser.wait_text("main", "Your answer: Bad, I'm not satisfied.").await;
    assert_eq!(browser.script("return document.querySelector('input[value=bad]').checked;").await, true);
    browser.screenshot("satisfaction-page").await;
    visitor.close().await;
    browser.quit().await;
    app.stop().await;
}

/// Two nodes on one PostgreSQL database sweep the same due cases at the same time: every case
/// gets exactly one survey (one message, one survey row), whichever node sent it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sweeping_at_once_survey_each_case_once() {
    let base = settings(
        Db::Postgres,
        &[("CASEFLOW__SATISFACTION__TICK_MS", "600000"), ("CASEFLOW__SATISFACTION__BATCH", "50")],
    );
    let clock = Arc::new(FixedClock::new(monday_nine()));
    let mut one = spawn_with_clock(base.clone(), clock.clone()).await;
    let two = spawn_node_with_clock(base, clock.clone()).await;
    let mut cases = Vec::new();
    for i in 0..12 {
        let c = web_case(&one, &format!("c{i}@example.org"), &format!("Case {i}")).await;
        answer_and_solve(&one, &c).await;
        cases.push(c);
    }
    clock.advance(Duration::hours(25));
    one.relogin().await;
    let (a, b) = tokio::join!(one.app().satisfaction_tick(), two.app().satisfaction_tick());
    let (a, b) = (a.expect("tick"), b.expect("tick"));
    // What a node skipped because the other held it is picked up by the next round.
    let (c, d) = tokio::join!(one.app().satisfaction_tick(), two.app().satisfaction_tick());
    let sent = a.sent + b.sent + c.expect("tick").sent + d.expect("tick").sent;
    assert_eq!(sent, cases.len(), "{a:?} {b:?}");
    for case_id in &cases {
        survey_of(&one, case_id).await.expect(200);
        let n = messages(&one, case_id)
            .await
            .iter()
            .filter(|m| m["body_text"].as_str().is_some_and(|b| b.contains("/satisfaction/")))
            .count();
        assert_eq!(n, 1, "case {case_id}");
    }
    two.stop().await;
    one.stop().await;
}

/// Complaints and suggestions come in through topics: a complaint opens at high priority and
/// alerts the supervisors at once (the team's, when the topic names one; every supervisor
/// otherwise), on the web form and in a chat; a suggestion opens at low priority, quietly.
async fn a_complaint_alerts_supervisors_and_a_suggestion_does_not(db: Db) {
    let mut s = settings(db, &[]);
    s.web_form.topics.push(caseflow_app::settings::TopicSettings {
        key: "billing_complaint".into(),
        label: "A complaint about a bill".into(),
        skills: vec![],
        team: Some("billing".into()),
        priority: Some(caseflow_core::Priority::Urgent),
        alert_supervisors: true,
    });
    let app = spawn_settings(s).await;
    let billing = app.post("/api/v1/teams", json!({"name": "Billing"})).await.expect(201);
    app.post(
        "/api/v1/agents",
        json!({"email": "sue@example.com", "name": "Sue", "role": "supervisor", "password": PASSWORD, "team_id": id(&billing)}),
    )
    .await
    .expect(201);
    let sue = app.login("sue@example.com", PASSWORD).await;
    let (_, otto) = app.agent("otto@example.com", "supervisor").await;
    let (_, agent) = app.agent("ann@example.com", "agent").await;
    let submit = |topic: &'static str, subject: &'static str| {
        let app = &app;
        async move {
            let form = json!({"name": "Carla", "email": "carla@example.org", "subject": subject, "message": "Details.", "topic": topic});
            let n = app.call(reqwest::Method::POST, "/api/v1/public/support", None, Some(form)).await.expect(201)
                ["case_number"]
                .as_i64()
                .expect("number");
            let cases = app.get("/api/v1/cases?limit=100").await.expect(200);
            cases["items"].as_array().expect("cases").iter().find(|c| c["number"] == n).cloned().expect("case")
        }
    };
    let topic_alerts = |token: String| alerts_of_kind(&app, token, "topic");

    let complaint = submit("complaint", "Rude on the phone").await;
    assert_eq!((&complaint["priority"], &complaint["team_id"]), (&json!("high"), &Value::Null), "{complaint}");
    for who in [&sue, &otto] {
        let seen = topic_alerts(who.clone()).await;
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0]["case_id"], complaint["id"]);
        let m = seen[0]["message"].as_str().unwrap_or_default();
        assert!(m.contains("A complaint about our service") && m.contains("on the web form"), "{m}");
    }
    assert!(topic_alerts(agent.clone()).await.is_empty(), "agents do not get supervisors' alerts");

    let bill = submit("billing_complaint", "Charged twice").await;
    assert_eq!((&bill["priority"], &bill["team_id"]), (&json!("urgent"), &billing["id"]), "{bill}");
    assert_eq!(topic_alerts(sue.clone()).await.len(), 2);
    assert_eq!(topic_alerts(otto.clone()).await.len(), 1, "another team's complaint");

    let idea = submit("suggestion", "Dark mode").await;
    assert_eq!(idea["priority"], "low");
    assert_eq!(topic_alerts(sue.clone()).await.len(), 2, "a suggestion raises no alert");

    let mut visitor = crate::chat::Ws::visitor(&app).await;
    visitor.send(json!({"type": "start", "name": "Vic", "topic": "complaint"})).await;
    visitor.recv_type("session").await;
    visitor.send(json!({"type": "message", "client_id": "v-1", "body": "Nobody calls me back."})).await;
    let chat_case = visitor.recv_type("ack").await["case_id"].as_str().expect("case").to_owned();
    let seen = topic_alerts(otto.clone()).await;
    let chat_alert = seen.iter().find(|a| a["case_id"] == json!(chat_case)).expect("the chat's alert");
    assert!(chat_alert["message"].as_str().unwrap_or_default().contains("in a chat"), "{chat_alert}");
    let c = app.get(&format!("/api/v1/cases/{chat_case}")).await.expect(200);
    assert_eq!(c["priority"], "high");
    visitor.close().await;
    app.stop().await;
}

both_backends!(db: a_complaint_alerts_supervisors_and_a_suggestion_does_not);

/// The worker on its own (not the test's ticks): after its first full sweep it reads only
/// what became due since, page after page (a batch of 2 for 5 cases), and surveys each once.
async fn the_worker_surveys_what_becomes_due_page_by_page(db: Db) {
    let clock = Arc::new(FixedClock::new(monday_nine()));
    let mut app = spawn_with_clock(
        settings(db, &[("CASEFLOW__SATISFACTION__TICK_MS", "200"), ("CASEFLOW__SATISFACTION__BATCH", "2")]),
        clock.clone(),
    )
    .await;
    let mut cases = Vec::new();
    for i in 0..5 {
        let c = web_case(&app, &format!("w{i}@example.org"), &format!("Worker {i}")).await;
        answer_and_solve(&app, &c).await;
        cases.push(c);
    }
    // Rounds run meanwhile and find nothing due; then a day passes.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    for c in &cases {
        survey_of(&app, c).await.expect_error(404, "not_found");
    }
    clock.advance(Duration::hours(25));
    app.relogin().await;
    for c in &cases {
        let app = &app;
        eventually(20, "the worker's survey", || async move {
            (app.get(&format!("/api/v1/cases/{c}/satisfaction")).await.status == 200).then_some(())
        })
        .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    for c in &cases {
        let n = messages(&app, c)
            .await
            .iter()
            .filter(|m| m["body_text"].as_str().is_some_and(|b| b.contains("/satisfaction/")))
            .count();
        assert_eq!(n, 1, "case {c}");
    }
    app.stop().await;
}

both_backends!(db: the_worker_surveys_what_becomes_due_page_by_page);
