//! Every bad input gets its documented status and `{code, message}`; nothing panics.

use crate::both_backends;
use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

async fn bad_input_gets_documented_codes(app: &TestApp) {
    let url = format!("{}/api/v1/cases", app.base);
    // Malformed JSON → 400 invalid_json.
    let r = app
        .send(
            app.client
                .post(&url)
                .bearer_auth(&app.admin)
                .header("Content-Type", "application/json")
                .body("{\"subject\": "),
        )
        .await;
    r.expect_error(400, "invalid_json");
    // Well-formed but wrong shape or values → 422 validation_failed.
    for body in [
        json!({"subject": "x", "body": "y", "customer": {"email": "not-an-address"}}),
        json!({"subject": "x", "body": "y", "customer": {"email": "a@b.co"}, "priority": "critical"}),
        json!({"subject": "x", "body": "y", "customer": {"email": "a@b.co"}, "colour": "red"}),
        json!({"subject": "   ", "body": "y", "customer": {"email": "a@b.co"}}),
        json!({"subject": "x", "body": "y", "customer": {}}),
        json!({"subject": 5, "body": "y", "customer": {"email": "a@b.co"}}),
        json!([1, 2, 3]),
    ] {
        app.post("/api/v1/cases", body).await.expect_error(422, "validation_failed");
    }
    // Wrong content type → 415.
    let r = app
        .send(app.client.post(&url).bearer_auth(&app.admin).header("Content-Type", "text/plain").body("hello"))
        .await;
    r.expect_error(415, "unsupported_media_type");
    // Unknown ids and routes → 404; wrong method → 405.
    app.get("/api/v1/cases/does-not-exist").await.expect_error(404, "not_found");
    app.get("/api/v1/cases/does-not-exist/messages").await.expect_error(404, "not_found");
    app.get("/api/v1/customers/0193").await.expect_error(404, "not_found");
    app.get("/api/v1/no-such-thing").await.expect_error(404, "not_found");
    app.call(Method::DELETE, "/api/v1/cases", Some(&app.admin), None).await.expect_error(405, "method_not_allowed");
    // Unicode, control characters and huge numbers do not break anything.
    let odd = app
        .post(
            "/api/v1/cases",
            json!({"subject": "Ünïcödé 🎫 \u{0}", "body": "x\u{202e}y", "customer": {"email": "ü@bücher.de"}}),
        )
        .await
        .expect(201);
    assert_eq!(odd["customer"]["tier"], "standard");
    let overflow = app
        .client
        .patch(format!("{}/api/v1/cases/{}", app.base, odd["id"].as_str().unwrap()))
        .bearer_auth(&app.admin)
        .header("Content-Type", "application/json")
        .body(r#"{"version": 99999999999999999999}"#);
    app.send(overflow).await.expect_error(422, "validation_failed");
    let bad_if_match = app
        .client
        .patch(format!("{}/api/v1/cases/{}", app.base, odd["id"].as_str().unwrap()))
        .bearer_auth(&app.admin)
        .header("If-Match", "banana")
        .json(&json!({}));
    app.send(bad_if_match).await.expect_error(400, "invalid_parameter");
}

async fn oversized_bodies_get_413_and_oversized_messages_422(app: &TestApp) {
    let big = "x".repeat(app.settings.limits.max_body_bytes + 10);
    app.post("/api/v1/cases", json!({"subject": "big", "body": big, "customer": {"email": "a@b.co"}}))
        .await
        .expect_error(413, "payload_too_large");
    let long = "y".repeat(app.settings.limits.max_message_bytes + 1);
    app.post("/api/v1/cases", json!({"subject": "long", "body": long, "customer": {"email": "a@b.co"}}))
        .await
        .expect_error(422, "validation_failed");
    // Nothing half-created.
    assert_eq!(app.get("/api/v1/cases").await.expect(200)["items"].as_array().unwrap().len(), 0);
}

async fn health_and_readiness(app: &TestApp) {
    let h = app.call(Method::GET, "/healthz", None, None).await;
    assert!(h.headers.get("x-request-id").is_some());
    assert_eq!(h.expect(200)["status"], "ok");
    assert_eq!(app.call(Method::GET, "/readyz", None, None).await.expect(200)["status"], "ready");
}

both_backends!(
    bad_input_gets_documented_codes,
    oversized_bodies_get_413_and_oversized_messages_422,
    health_and_readiness
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_503_when_the_database_is_gone() {
    // A PostgreSQL database that is dropped under the running server.
    let admin = std::env::var("CASEFLOW_TEST_POSTGRES_URL").expect("CASEFLOW_TEST_POSTGRES_URL (run make test)");
    let app = spawn_with(Db::Postgres, &[("CASEFLOW__DATABASE__CONNECT_TIMEOUT_SECS", "1")]).await;
    let url = app.settings.database.url.expose().to_owned();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let mut conn = caseflow_store::db::connect_once(&caseflow_store::DbUrl::parse(&admin).unwrap()).unwrap();
    use diesel::connection::SimpleConnection;
    // The server's workers (router, SLA scheduler) keep reconnecting; a connection opened
    // while the drop runs makes it fail ("being accessed by other users"): try again.
    let mut dropped = Err(String::new());
    for _ in 0..20 {
        dropped = conn.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).map_err(|e| e.to_string());
        if dropped.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    dropped.expect("drop the database");
    app.call(Method::GET, "/readyz", None, None).await.expect_error(503, "service_unavailable");
    app.get("/api/v1/cases").await.expect_error(503, "service_unavailable");
    app.stop().await;
}
