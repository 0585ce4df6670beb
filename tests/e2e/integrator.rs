//! The integrator and operator surface: idempotency keys, rate limits, metrics.

use crate::both_backends;
use crate::helpers::*;
use caseflow_app::idempotency::Begin;
use reqwest::Method;
use serde_json::{json, Value};

async fn post_with_key(app: &TestApp, token: &str, path: &str, key: &str, body: &Value) -> Resp {
    app.send(
        app.client.post(format!("{}{path}", app.base)).bearer_auth(token).header("Idempotency-Key", key).json(body),
    )
    .await
}

async fn idempotency_keys_replay_the_first_response_and_create_nothing_new(app: &TestApp) {
    let body = json!({"subject": "Paid twice", "body": "Please refund", "customer": {"email": "idem@example.org"}});
    let first = post_with_key(app, &app.admin, "/api/v1/cases", "key-1", &body).await;
    assert_eq!(first.status.as_u16(), 201);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = post_with_key(app, &app.admin, "/api/v1/cases", "key-1", &body).await;
    assert_eq!(again.status.as_u16(), 201, "the original status is replayed");
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.headers.get("location"), first.headers.get("location"));
    assert_eq!(again.body, first.body);
    assert_eq!(app.get("/api/v1/cases").await.expect(200)["items"].as_array().unwrap().len(), 1);

    // Same key, different body: refused, nothing created.
    let other = json!({"subject": "Different", "body": "x", "customer": {"email": "idem@example.org"}});
    post_with_key(app, &app.admin, "/api/v1/cases", "key-1", &other).await.expect_error(422, "idempotency_key_reused");
    // Same key on another route is a different request too.
    let case_id = first.body["id"].as_str().unwrap();
    post_with_key(
        app,
        &app.admin,
        &format!("/api/v1/cases/{case_id}/messages"),
        "key-1",
        &json!({"kind": "note", "body": "n"}),
    )
    .await
    .expect_error(422, "idempotency_key_reused");
    assert_eq!(app.get("/api/v1/cases").await.expect(200)["items"].as_array().unwrap().len(), 1);

    // Keys are per principal: another agent's identical key is independent.
    let (_, other_agent) = app.agent("second@caseflow.test", "agent").await;
    post_with_key(app, &other_agent, "/api/v1/cases", "key-1", &body).await.expect(201);
    assert_eq!(app.get("/api/v1/cases").await.expect(200)["items"].as_array().unwrap().len(), 2);

    // Messages: a retried reply is one reply.
    let reply = json!({"kind": "reply", "body": "Refunded."});
    let r1 = post_with_key(app, &app.admin, &format!("/api/v1/cases/{case_id}/messages"), "reply-1", &reply)
        .await
        .expect(201);
    let r2 = post_with_key(app, &app.admin, &format!("/api/v1/cases/{case_id}/messages"), "reply-1", &reply)
        .await
        .expect(201);
    assert_eq!(r1["id"], r2["id"]);
    let msgs = app.get(&format!("/api/v1/cases/{case_id}/messages")).await.expect(200);
    assert_eq!(msgs["items"].as_array().unwrap().len(), 2, "first message + one reply");

    // Validation errors are stored too: the retry gets the same answer.
    let bad = json!({"subject": "x", "body": "y", "customer": {"email": "nope"}});
    post_with_key(app, &app.admin, "/api/v1/cases", "bad-1", &bad).await.expect_error(422, "validation_failed");
    let replay = post_with_key(app, &app.admin, "/api/v1/cases", "bad-1", &bad).await;
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
    replay.expect_error(422, "validation_failed");

    // A malformed key is refused before anything runs.
    post_with_key(app, &app.admin, "/api/v1/cases", "has space", &body).await.expect_error(400, "invalid_parameter");
    // Without credentials the key does not help: 401 as usual.
    let anon = app
        .send(app.client.post(format!("{}/api/v1/cases", app.base)).header("Idempotency-Key", "k").json(&body))
        .await;
    anon.expect_error(401, "unauthenticated");
}

async fn concurrent_requests_with_one_key_create_one_case(app: &TestApp) {
    let body = json!({"subject": "Race", "body": "x", "customer": {"email": "race@example.org"}});
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (client, url, token, body) =
            (app.client.clone(), format!("{}/api/v1/cases", app.base), app.admin.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let r =
                client.post(url).bearer_auth(token).header("Idempotency-Key", "race").json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            201 => {
                ids.insert(body["id"].as_str().unwrap().to_owned());
            }
            409 => assert_eq!(body["code"], "idempotency_in_progress"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ids.len(), 1, "every 201 names the same case");
    assert_eq!(app.get("/api/v1/cases").await.expect(200)["items"].as_array().unwrap().len(), 1);
}

async fn idempotency_keys_expire(app: &TestApp) {
    // Drive the use case with a clock we control, on the same database.
    let clock = std::sync::Arc::new(caseflow_core::FixedClock::new(chrono::Utc::now()));
    let mine = caseflow_app::App::open(app.settings.clone(), clock.clone()).unwrap();
    let begin = |k: &str| mine.idempotency_begin("agent:x".into(), k.into(), "h".into());
    assert_eq!(begin("exp").await.unwrap(), Begin::Proceed);
    assert_eq!(begin("exp").await.unwrap(), Begin::InProgress);
    // The lock runs out before the key does: a retry may take over a request whose node died.
    clock.advance(chrono::Duration::seconds(app.settings.api.idempotency_lock_secs as i64 + 1));
    assert_eq!(begin("exp").await.unwrap(), Begin::Proceed);
    mine.idempotency_complete(
        "agent:x".into(),
        "exp".into(),
        caseflow_app::idempotency::StoredResponse { status: 201, headers: vec![], body: b"{}".to_vec() },
    )
    .await
    .unwrap();
    assert!(matches!(begin("exp").await.unwrap(), Begin::Replay(_)));
    clock.advance(chrono::Duration::seconds(app.settings.api.idempotency_ttl_secs as i64));
    assert_eq!(mine.purge_expired_idempotency_keys().await.unwrap(), 1);
    assert_eq!(begin("exp").await.unwrap(), Begin::Proceed, "an expired key is new again");
}

async fn metrics_count_requests_cases_and_queues(app: &TestApp) {
    let case = app.new_case("metrics@example.org", "Count me").await;
    app.post(
        &format!("/api/v1/cases/{}/messages", case["id"].as_str().unwrap()),
        json!({"kind": "reply", "body": "ok"}),
    )
    .await
    .expect(201);
    app.get("/api/v1/cases/nope").await.expect(404);
    let addr = app.running.as_ref().unwrap().metrics_addr.expect("metrics listener");
    let text = app.client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    for needle in [
        r#"caseflow_http_requests_total{method="POST",route="/api/v1/cases",status="201"} 1"#,
        r#"caseflow_http_requests_total{method="GET",route="/api/v1/cases/{id}",status="404"} 1"#,
        r#"caseflow_cases_created_total{channel="api"} 1"#,
        r#"caseflow_messages_ingested_total{channel="api"} 1"#,
        "caseflow_outbox_pending 1",
        "caseflow_routing_queue_depth 1",
        "caseflow_http_request_duration_seconds_bucket",
        r#"caseflow_db_pool_connections{state="idle"}"#,
        "caseflow_db_pool_max_connections 4",
        "caseflow_sla_breaches_total 0",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains("metrics@example.org"), "no personal data in metrics");
}

both_backends!(
    idempotency_keys_replay_the_first_response_and_create_nothing_new,
    concurrent_requests_with_one_key_create_one_case,
    idempotency_keys_expire,
    metrics_count_requests_cases_and_queues,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after() {
    let app = spawn_with(
        Db::Sqlite,
        &[
            ("CASEFLOW__RATE_LIMIT__PER_IP_PER_MINUTE", "1"),
            ("CASEFLOW__RATE_LIMIT__PER_IP_BURST", "3"),
            ("CASEFLOW__RATE_LIMIT__PER_TOKEN_PER_MINUTE", "1"),
            ("CASEFLOW__RATE_LIMIT__PER_TOKEN_BURST", "4"),
        ],
    )
    .await;
    // spawn_with logged in once from this IP already; two more logins fit the burst of 3.
    let login = json!({"email": ADMIN_EMAIL, "password": PASSWORD});
    for _ in 0..2 {
        app.call(Method::POST, "/api/v1/auth/login", None, Some(login.clone())).await.expect(200);
    }
    let limited = app.call(Method::POST, "/api/v1/auth/login", None, Some(login.clone())).await;
    let retry: u64 = limited.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(limited.headers.get("ratelimit-limit").unwrap(), "3");
    assert_eq!(limited.headers.get("ratelimit-remaining").unwrap(), "0");
    limited.expect_error(429, "rate_limited");
    // Health checks are never limited.
    for _ in 0..5 {
        app.call(Method::GET, "/healthz", None, None).await.expect(200);
    }
    // The credential has its own bucket of 4.
    for _ in 0..4 {
        app.get("/api/v1/cases").await.expect(200);
    }
    app.get("/api/v1/cases").await.expect_error(429, "rate_limited");
    let addr = app.running.as_ref().unwrap().metrics_addr.unwrap();
    let text = app.client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"caseflow_rate_limited_total{kind="ip"} 1"#), "{text}");
    assert!(text.contains(r#"caseflow_rate_limited_total{kind="token"} 1"#), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_the_main_port_need_the_metrics_token() {
    let app = spawn_with(
        Db::Sqlite,
        &[("CASEFLOW__METRICS__BIND", ""), ("CASEFLOW__METRICS__TOKEN", "scrape-secret-0123456789")],
    )
    .await;
    assert!(app.running.as_ref().unwrap().metrics_addr.is_none());
    app.call(Method::GET, "/metrics", None, None).await.expect_error(401, "unauthenticated");
    app.call(Method::GET, "/metrics", Some("wrong-token"), None).await.expect_error(401, "unauthenticated");
    let ok = app.send(app.client.get(format!("{}/metrics", app.base)).bearer_auth("scrape-secret-0123456789")).await;
    assert_eq!(ok.status.as_u16(), 200);
    assert!(ok.body.as_str().unwrap().contains("caseflow_http_requests_total"));
    app.stop().await;
}
