//! SLA through the running service, with an injected clock so hours pass in milliseconds:
//! calendars and policies over the API, a case's clocks and explanations, warnings, breaches
//! and ladder steps fired once and pushed live on the alert stream (resumable), acknowledged
//! with an audit trail; and a breach that happened while no server ran is raised once when
//! one starts.

use crate::both_backends;
use crate::helpers::*;
use caseflow_core::{Clock, FixedClock};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

/// Monday 7 December 2026, 09:00 UTC.
fn monday_nine() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().expect("valid")
}

async fn office_hours(app: &TestApp) {
    let cal = json!({
        "name": "Office",
        "time_zone": "UTC",
        "hours": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}],
        "holidays": [{"date": "2026-12-25", "name": "Christmas", "yearly": true}]
    });
    let c = app.post("/api/v1/sla/calendars", cal).await.expect(201);
    assert_eq!(c["name"], "Office");
    let policy = json!({
        "name": "Test",
        "calendar": "Office",
        "targets": [
            {"metric": "first_response", "minutes": 60},
            {"metric": "resolution", "minutes": 480}
        ],
        "warning": {"percent": 50},
        "ladder": [
            {"on": "warning", "action": "notify_assignee", "metrics": ["first_response"]},
            {"on": "breach", "action": "alert_supervisors", "metrics": ["first_response"]},
            {"on": "breach", "action": "raise_priority", "metrics": ["first_response"]}
        ]
    });
    let p = app.post("/api/v1/sla/policies", policy).await.expect(201);
    assert_eq!((p["name"].as_str(), p["position"].as_i64()), (Some("Test"), Some(0)));
}

/// Reads `alert` events from an open stream until `n` have arrived (or 15 s pass).
async fn read_alerts(stream: &mut reqwest::Response, buf: &mut String, n: usize) -> Vec<(String, Value)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut out = Vec::new();
    loop {
        out.extend(std::iter::from_fn(|| next_sse_block(buf)).flatten());
        if out.len() >= n {
            return out;
        }
        next_sse_chunk(stream, buf, deadline, &out).await;
    }
}

async fn open_stream(app: &TestApp, last: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(format!("{}/api/v1/alerts/stream", app.base)).bearer_auth(&app.admin);
    if let Some(id) = last {
        req = req.header("Last-Event-ID", id);
    }
    let r = req.send().await.expect("stream");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    r
}

async fn alerts(app: &TestApp) -> Vec<Value> {
    let since = (monday_nine() - Duration::days(1)).to_rfc3339();
    let url = format!("/api/v1/alerts?since={}", since.replace('+', "%2B"));
    app.get(&url).await.expect(200)["items"].as_array().cloned().unwrap_or_default()
}

async fn warnings_breaches_and_ladder_fire_once_live(db: Db) {
    let clock = Arc::new(FixedClock::new(monday_nine()));
    // Sessions live a day: the test moves the clock by hours.
    let app = spawn_with_clock(settings(db, &[("CASEFLOW__AUTH__JWT_TTL_SECS", "86400")]), clock.clone()).await;
    office_hours(&app).await;
    // Bad specs are refused with the stable error shape.
    let bad = json!({"name": "Mars", "time_zone": "Mars/Olympus", "hours": [{"days": ["mon"], "from": "09:00", "to": "17:00"}]});
    app.post("/api/v1/sla/calendars", bad).await.expect_error(422, "validation_failed");
    let bad =
        json!({"name": "Orphan", "calendar": "Nowhere", "targets": [{"metric": "first_response", "minutes": 60}]});
    app.post("/api/v1/sla/policies", bad).await.expect_error(422, "validation_failed");
    app.delete(&format!(
        "/api/v1/sla/calendars/{}",
        id(&app.get("/api/v1/sla/calendars").await.expect(200)["items"][0])
    ))
    .await
    .expect_error(409, "in_use");

    let mut stream = open_stream(&app, None).await;
    let mut buf = String::new();
    let case = app.new_case("late@example.org", "Nobody answers").await;
    let case_id = id(&case);
    // Assigned (by hand) to an agent, who is offline; a supervisor without a team watches.
    let (agent_id, agent) = app.agent("ann.agent@caseflow.test", "agent").await;
    let (_, supervisor) = app.agent("sue.supervisor@caseflow.test", "supervisor").await;
    app.patch(&format!("/api/v1/cases/{case_id}"), json!({"assignee_id": agent_id})).await.expect(200);
    // A second case, answered in time, raises nothing past its warning.
    let answered = id(&app.new_case("quick@example.org", "Answered").await);
    let sla = eventually(10, "the case's SLA", || async {
        let s = app.get(&format!("/api/v1/cases/{case_id}/sla")).await.expect(200);
        (s["policy_name"] == "Test").then_some(s)
    })
    .await;
    let first =
        sla["clocks"].as_array().expect("clocks").iter().find(|c| c["metric"] == "first_response").expect("first");
    assert_eq!(first["state"], "running");
    assert_eq!(first["due_at"], "2026-12-07T10:00:00Z");
    assert_eq!(first["warn_at"], "2026-12-07T09:30:00Z");
    assert_eq!(
        first["explanation"],
        "due Mon 07 Dec 10:00 UTC: first response, policy \"Test\", 1 business hour, calendar \"Office\""
    );
    assert_eq!(sla["time_zone"], "UTC");

    clock.set(monday_nine() + Duration::minutes(10));
    app.post(&format!("/api/v1/cases/{answered}/messages"), json!({"kind": "reply", "body": "On it."}))
        .await
        .expect(201);

    // 09:31: warnings for both cases' first response (the answered one's came at 09:30, but
    // it was met at 09:10: nothing for it), and the notify step.
    clock.set(monday_nine() + Duration::minutes(31));
    app.app().sla_tick().await.expect("tick");
    let got = read_alerts(&mut stream, &mut buf, 2).await;
    let kinds: Vec<(&str, &str)> =
        got.iter().map(|(_, a)| (a["kind"].as_str().unwrap_or(""), a["case_id"].as_str().unwrap_or(""))).collect();
    assert_eq!(kinds, vec![("warning", case_id.as_str()), ("escalation", case_id.as_str())]);
    assert_eq!(got[1].1["action"], "notify_assignee");
    assert_eq!(got[1].1["agent_id"], agent_id.as_str());
    let first_alert = got[0].0.clone();

    // 10:01: breached, supervisors alerted, priority raised.
    clock.set(monday_nine() + Duration::minutes(61));
    app.app().sla_tick().await.expect("tick");
    let got = read_alerts(&mut stream, &mut buf, 2).await;
    let kinds: Vec<&str> = got.iter().map(|(_, a)| a["kind"].as_str().unwrap_or("")).collect();
    assert_eq!(kinds, vec!["breach", "escalation"]);
    assert!(got[0].1["message"].as_str().unwrap_or("").contains("breached Mon 07 Dec 10:00 UTC"), "{}", got[0].1);
    let priority = eventually(5, "the priority raised", || async {
        let c = app.get(&format!("/api/v1/cases/{case_id}")).await.expect(200);
        (c["priority"] == "high").then_some(c["priority"].clone())
    })
    .await;
    assert_eq!(priority, "high");

    // Ticks later (and the worker's own) fire nothing again.
    clock.set(monday_nine() + Duration::minutes(90));
    for _ in 0..3 {
        app.app().sla_tick().await.expect("tick");
    }
    let all = alerts(&app).await;
    assert_eq!(all.len(), 4, "{all:#?}");
    assert!(all.iter().all(|a| a["case_id"] == case_id.as_str()));
    let events = app.get(&format!("/api/v1/cases/{case_id}/events?limit=100")).await.expect(200);
    let kinds: Vec<&str> =
        events["items"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    for k in ["sla_warning", "sla_breached", "sla_escalated", "priority_changed"] {
        assert_eq!(
            kinds.iter().filter(|x| **x == k).count(),
            if k == "sla_escalated" { 3 } else { 1 },
            "{k}: {kinds:?}"
        );
    }
    let sla = app.get(&format!("/api/v1/cases/{case_id}/sla")).await.expect(200);
    assert_eq!(sla["breached"], true);
    let first =
        sla["clocks"].as_array().expect("clocks").iter().find(|c| c["metric"] == "first_response").expect("first");
    assert!(first["milestones"].as_array().expect("milestones").iter().all(|m| m["fired_at"].is_string()), "{first}");

    // Resume after the first alert: the three later ones come again.
    drop(stream);
    let mut resumed = open_stream(&app, Some(&first_alert)).await;
    let mut buf = String::new();
    let again = read_alerts(&mut resumed, &mut buf, 3).await;
    let ids: Vec<&str> = again.iter().map(|(i, _)| i.as_str()).collect();
    assert!(!ids.contains(&first_alert.as_str()), "{ids:?}");
    assert_eq!(again.last().map(|a| a.1["kind"].clone()), Some(json!("escalation")));

    // Acknowledging is audited once.
    let breach = all.iter().find(|a| a["kind"] == "breach").expect("breach");
    let acked = app.post(&format!("/api/v1/alerts/{}/acknowledge", id(breach)), json!({})).await.expect(200);
    assert!(acked["acknowledged_by"].is_string() && acked["acknowledged_at"].is_string(), "{acked}");
    app.post(&format!("/api/v1/alerts/{}/acknowledge", id(breach)), json!({})).await.expect(200);
    let events = app.get(&format!("/api/v1/cases/{case_id}/events?limit=100")).await.expect(200);
    let acks = events["items"].as_array().expect("events").iter().filter(|e| e["kind"] == "alert_acknowledged").count();
    assert_eq!(acks, 1);
    let open = app.get("/api/v1/alerts?unacknowledged=true&since=2026-12-06T00:00:00Z").await.expect(200);
    assert_eq!(open["items"].as_array().map(Vec::len), Some(3));
    // Who sees what: the agent the notification is for sees only it; a supervisor without a
    // team sees the alerts of cases without a team, not another agent's notification.
    let seen = |token: String| {
        let app = &app;
        async move {
            let r =
                app.call(reqwest::Method::GET, "/api/v1/alerts?since=2026-12-06T00:00:00Z", Some(&token), None).await;
            let items = r.expect(200)["items"].as_array().cloned().unwrap_or_default();
            items.iter().map(|a| a["kind"].as_str().unwrap_or("").to_owned()).collect::<Vec<_>>()
        }
    };
    assert_eq!(seen(agent.clone()).await, vec!["escalation"]);
    assert_eq!(seen(supervisor.clone()).await, vec!["warning", "breach", "escalation"]);
    let notify = all.iter().find(|a| a["action"] == "notify_assignee").expect("notify");
    let r = app
        .call(reqwest::Method::POST, &format!("/api/v1/alerts/{}/acknowledge", id(notify)), Some(&supervisor), None)
        .await;
    r.expect_error(404, "not_found");
    let r = app
        .call(reqwest::Method::POST, &format!("/api/v1/alerts/{}/acknowledge", id(notify)), Some(&agent), None)
        .await;
    assert_eq!(r.expect(200)["acknowledged_by"], agent_id.as_str());
    // The stream needs credentials like everything else.
    let r = app.client.get(format!("{}/api/v1/alerts/stream", app.base)).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 401);
    app.stop().await;
}

async fn a_breach_while_down_is_raised_once_on_start(db: Db) {
    let settings = settings(db, &[]);
    let t0 = monday_nine();
    let app = spawn_with_clock(settings.clone(), Arc::new(FixedClock::new(t0))).await;
    let policy = json!({
        "name": "Around the clock",
        "targets": [{"metric": "first_response", "minutes": 30, "business_hours": false}],
        "ladder": []
    });
    app.post("/api/v1/sla/policies", policy).await.expect(201);
    let case_id = id(&app.new_case("down@example.org", "While you were out").await);
    eventually(10, "the case evaluated", || async {
        let s = app.get(&format!("/api/v1/cases/{case_id}/sla")).await.expect(200);
        (s["due_at"] == "2026-12-07T09:30:00Z").then_some(())
    })
    .await;
    app.stop().await;

    // Two hours later a node starts: the warning and the breach passed while none ran.
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(t0 + Duration::hours(2)));
    let node = spawn_node_with_clock(settings.clone(), clock).await;
    let raised = eventually(10, "the missed breach", || async {
        let a = alerts(&node).await;
        (a.iter().any(|x| x["kind"] == "breach")).then_some(a)
    })
    .await;
    let kinds: Vec<&str> = raised.iter().filter_map(|a| a["kind"].as_str()).collect();
    assert_eq!(kinds, vec!["warning", "breach"]);
    node.stop().await;

    // Another restart, later still: nothing fired twice.
    let node = spawn_node_with_clock(settings, Arc::new(FixedClock::new(t0 + Duration::hours(3)))).await;
    for _ in 0..3 {
        node.app().sla_tick().await.expect("tick");
    }
    assert_eq!(alerts(&node).await.len(), 2);
    node.stop().await;
}

/// A new email from a customer gets exactly one acknowledgement in the real SMTP server,
/// within the policy's window, with the case number and the first-response deadline; a
/// follow-up and more scheduler passes send no second one, and the acknowledgement does not
/// count as the first response.
async fn a_new_email_is_acknowledged_once_with_its_deadline(db: Db) {
    let servers = crate::mailservers::MailServers::start();
    let app = spawn_settings(servers.settings(db, 50)).await;
    let policy = json!({
        "name": "Email",
        "conditions": {"channels": ["email"]},
        "targets": [{"metric": "first_response", "minutes": 240, "business_hours": false}],
        "acknowledge_within_secs": 60
    });
    app.post("/api/v1/sla/policies", policy).await.expect(201);
    let (mid, raw) = email("Dana Example <dana@example.org>", "Where is my order", "", "Order 42 is late.");
    servers.append(std::slice::from_ref(&raw)).await;
    let sent = eventually(30, "the acknowledgement in the SMTP sink", || async {
        let s = servers.sent();
        (!s.is_empty()).then_some(s)
    })
    .await;
    let cases = app.get("/api/v1/cases").await.expect(200)["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(cases.len(), 1);
    let (case_id, number) = (id(&cases[0]), cases[0]["number"].as_i64().unwrap_or_default());
    let text = String::from_utf8_lossy(&sent[0]).to_string();
    let parsed = mail_parser::MessageParser::default().parse(text.as_bytes()).expect("parsable");
    assert_eq!(parsed.subject(), Some(format!("Re: Where is my order [#{number}]").as_str()));
    assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
    assert!(text.contains(&format!("In-Reply-To: <{mid}>")), "{text}");
    let body = parsed.body_text(0).expect("text body").to_string();
    assert!(body.contains("Hello Dana Example,"), "{body}");
    assert!(body.contains(&format!("case #{number}")), "{body}");
    let sla = app.get(&format!("/api/v1/cases/{case_id}/sla")).await.expect(200);
    let first =
        sla["clocks"].as_array().expect("clocks").iter().find(|c| c["metric"] == "first_response").expect("first");
    assert_eq!(first["state"], "running", "the acknowledgement is not a response: {first}");
    let due: DateTime<Utc> = first["due_at"].as_str().expect("due").parse().expect("time");
    assert!(body.contains(&format!("We will answer by {} (UTC).", due.format("%a %d %b %H:%M"))), "{body}");
    // Within the window: the acknowledgement's message was written within 60 s of the case.
    let msgs = messages(&app, &case_id).await;
    let ack = msgs.iter().find(|m| m["direction"] == "outbound").expect("ack message");
    let created: DateTime<Utc> = cases[0]["created_at"].as_str().expect("created").parse().expect("time");
    let acked: DateTime<Utc> = ack["created_at"].as_str().expect("created").parse().expect("time");
    assert!(acked - created <= Duration::seconds(60), "{created} → {acked}");

    // A follow-up on the case and the same message delivered again: no second one.
    let (_, follow) = email("dana@example.org", &format!("Re: Where is my order [#{number}]"), "", "Any news?");
    servers.append(&[follow, raw]).await;
    eventually(30, "the follow-up on the case", || async {
        let m = messages(&app, &case_id).await;
        (m.iter().filter(|m| m["direction"] == "inbound").count() == 2).then_some(())
    })
    .await;
    for _ in 0..3 {
        app.app().sla_tick().await.expect("tick");
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(servers.sent().len(), 1, "exactly one acknowledgement");
    app.stop().await;
}

/// A web-form case is acknowledged at once, in the same transaction, with the case number
/// and the first-response deadline of the policy that applies.
async fn a_web_form_case_is_acknowledged_with_its_deadline(db: Db) {
    let clock = Arc::new(FixedClock::new(monday_nine()));
    let app = spawn_with_clock(settings(db, &[]), clock).await;
    office_hours(&app).await;
    let r = app
        .call(
            reqwest::Method::POST,
            "/api/v1/public/support",
            None,
            Some(json!({"name": "Wes Form", "email": "wes@example.org", "subject": "Form", "message": "Hello there.", "topic": "general"})),
        )
        .await
        .expect(201);
    assert_eq!(r["acknowledgement_queued"], true);
    let number = r["case_number"].as_i64().expect("number");
    let cases = app.get("/api/v1/cases").await.expect(200)["items"].as_array().cloned().unwrap_or_default();
    let case_id = id(cases.iter().find(|c| c["number"] == number).expect("the case"));
    let msgs = messages(&app, &case_id).await;
    let ack = msgs.iter().find(|m| m["direction"] == "outbound").expect("acknowledgement");
    let body = ack["body_text"].as_str().unwrap_or("");
    assert!(body.contains(&format!("#{number}")), "{body}");
    assert!(body.contains("We will answer by Mon 07 Dec 10:00 (UTC)."), "{body}");
    app.stop().await;
}

/// A chat is acknowledged in the conversation, at once, with the case number and the
/// first-response deadline.
async fn a_chat_is_acknowledged_with_its_deadline(db: Db) {
    let clock = Arc::new(FixedClock::new(monday_nine()));
    let app = spawn_with_clock(settings(db, &[]), clock).await;
    office_hours(&app).await;
    let mut visitor = crate::chat::Ws::visitor(&app).await;
    let (_, ack) = crate::chat::open_chat(&mut visitor, "Cy", None, "Is anyone there?").await;
    let number = ack["case_number"].as_i64().expect("number");
    let _mine = visitor.recv_type("message").await;
    let greeting = visitor.recv_type("message").await;
    let body = greeting["body"].as_str().unwrap_or("");
    assert_eq!(greeting["author"], "system");
    assert!(body.contains(&format!("#{number}")), "{body}");
    assert!(body.ends_with("We will answer by Mon 07 Dec 10:00 (UTC)."), "{body}");
    visitor.close().await;
    app.stop().await;
}

both_backends!(
    db: a_chat_is_acknowledged_with_its_deadline,
    a_web_form_case_is_acknowledged_with_its_deadline,
    warnings_breaches_and_ladder_fire_once_live,
    a_breach_while_down_is_raised_once_on_start,
    a_new_email_is_acknowledged_once_with_its_deadline
);

/// Two nodes on one PostgreSQL database: an alert raised by one node's scheduler reaches a
/// live stream on the other at once, through `LISTEN/NOTIFY` — the streaming node's own poll
/// is set to a minute and it runs no scheduler, so nothing else could bring it within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_raised_on_one_node_reaches_a_stream_on_another_at_once() {
    let base = settings(
        Db::Postgres,
        &[
            ("CASEFLOW__SLA__STREAM_POLL_MS", "60000"),
            ("CASEFLOW__SLA__ENABLED", "false"),
            ("CASEFLOW__AUTH__JWT_TTL_SECS", "86400"),
        ],
    );
    let clock = Arc::new(FixedClock::new(monday_nine()));
    let watcher = spawn_with_clock(base.clone(), clock.clone()).await;
    let mut scheduler_settings = base.clone();
    scheduler_settings.sla.enabled = true;
    let scheduler = spawn_node_with_clock(scheduler_settings, clock.clone()).await;
    let policy = json!({
        "name": "Ten minutes",
        "targets": [{"metric": "first_response", "minutes": 10, "business_hours": false}],
        "warning": {"percent": 50}
    });
    watcher.post("/api/v1/sla/policies", policy).await.expect(201);
    let case_id = id(&watcher.new_case("far@example.org", "Across nodes").await);
    eventually(10, "the case evaluated by the other node", || async {
        let s = scheduler.get(&format!("/api/v1/cases/{case_id}/sla")).await.expect(200);
        (s["due_at"] == "2026-12-07T09:10:00Z").then_some(())
    })
    .await;
    let mut stream = open_stream(&watcher, None).await;
    let mut buf = String::new();
    // Let the stream's first read pass, then raise the warning and the breach on the other node.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    clock.set(monday_nine() + Duration::minutes(11));
    let raised = std::time::Instant::now();
    scheduler.app().sla_tick().await.expect("tick");
    let got = read_alerts(&mut stream, &mut buf, 2).await;
    assert!(raised.elapsed() < std::time::Duration::from_secs(5), "took {:?}", raised.elapsed());
    let kinds: Vec<&str> = got.iter().map(|(_, a)| a["kind"].as_str().unwrap_or("")).collect();
    assert_eq!(kinds, vec!["warning", "breach"]);
    scheduler.stop().await;
    watcher.stop().await;
}

/// Starts `caseflow serve` as a process on `url`, its clock shifted by `offset` seconds;
/// returns it and its base URL once it answers.
async fn serve_process(url: &str, offset: i64) -> (std::process::Child, String) {
    let port = crate::mailservers::free_port();
    let child = caseflow()
        .env("CASEFLOW__DATABASE__URL", url)
        .env("CASEFLOW__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("CASEFLOW__METRICS__BIND", "127.0.0.1:0")
        .env("CASEFLOW__CLOCK__OFFSET_SECS", offset.to_string())
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("caseflow serve");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    eventually(30, "the server to answer", || async {
        client.get(format!("{base}/readyz")).send().await.ok().filter(|r| r.status() == 200).map(|_| ())
    })
    .await;
    (child, base)
}

/// A real `caseflow serve` process killed with SIGKILL before a breach; another started after
/// it (its clock two hours later, `clock.offset_secs`) raises the missed warning and breach,
/// once; a third, later still, raises nothing again.
async fn a_killed_server_raises_the_missed_breach_once_after_restart(db: Db) {
    let url = database_url(db);
    let out = caseflow().env("CASEFLOW__DATABASE__URL", &url).arg("migrate").output().expect("migrate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = caseflow()
        .env("CASEFLOW__DATABASE__URL", &url)
        .args(["admin", "create-token", "--name", "kill-test", "--scopes", "admin"])
        .output()
        .expect("token");
    let token = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").trim().to_owned();
    let client = reqwest::Client::new();
    let call = |base: &str, method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut r = client.request(method, format!("{base}/api/v1{path}")).bearer_auth(&token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let r = r.send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (mut first, base) = serve_process(&url, 0).await;
    let policy = json!({"name": "Half an hour", "targets": [{"metric": "first_response", "minutes": 30, "business_hours": false}]});
    assert_eq!(call(&base, reqwest::Method::POST, "/sla/policies", Some(policy)).await.0, 201);
    let body = json!({"subject": "Killed", "body": "Before the breach.", "customer": {"email": "kill@example.org"}});
    let (status, case) = call(&base, reqwest::Method::POST, "/cases", Some(body)).await;
    assert_eq!(status, 201, "{case}");
    let case_id = id(&case);
    eventually(15, "the case evaluated", || async {
        let (_, s) = call(&base, reqwest::Method::GET, &format!("/cases/{case_id}/sla"), None).await;
        s["due_at"].is_string().then_some(())
    })
    .await;
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");

    let alerts = |base: String| {
        let call = &call;
        async move {
            let (_, a) = call(&base, reqwest::Method::GET, "/alerts?since=2000-01-01T00:00:00Z", None).await;
            a["items"].as_array().cloned().unwrap_or_default()
        }
    };
    let (mut second, base) = serve_process(&url, 7_200).await;
    let raised = eventually(15, "the missed breach", || async {
        let a = alerts(base.clone()).await;
        a.iter().any(|x| x["kind"] == "breach").then_some(a)
    })
    .await;
    let kinds: Vec<&str> = raised.iter().filter_map(|a| a["kind"].as_str()).collect();
    assert_eq!(kinds, vec!["warning", "breach"]);
    second.kill().expect("SIGKILL");
    second.wait().expect("reaped");

    let (mut third, base) = serve_process(&url, 10_800).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(alerts(base).await.len(), 2, "nothing fired twice");
    third.kill().expect("SIGKILL");
    third.wait().expect("reaped");
}

both_backends!(db: a_killed_server_raises_the_missed_breach_once_after_restart);
