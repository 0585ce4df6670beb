//! Webhooks against a real HTTP receiver on loopback: deliveries signed with HMAC-SHA256 over
//! `timestamp.body`, retried after a failure with the same delivery id, logged, replayed; an
//! SLA breach reaches the receiver too; bad subscriptions are refused.

use crate::both_backends;
use crate::helpers::*;
use actix_web::{web, App as Actix, HttpRequest, HttpResponse, HttpServer};
use caseflow_core::FixedClock;
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
struct Received {
    event: String,
    delivery: String,
    timestamp: String,
    signature: String,
    body: String,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

/// A receiver on loopback that answers 500 to the first request and 200 to the others.
async fn receiver() -> (String, Inbox, actix_web::dev::ServerHandle) {
    let inbox: Inbox = Arc::new(Mutex::new(Vec::new()));
    let data = web::Data::new(inbox.clone());
    let server = HttpServer::new(move || {
        Actix::new().app_data(data.clone()).route(
            "/hook",
            web::post().to(|req: HttpRequest, body: String, inbox: web::Data<Inbox>| async move {
                let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let mut all = inbox.lock().unwrap();
                all.push(Received {
                    event: h("Caseflow-Event"),
                    delivery: h("Caseflow-Delivery"),
                    timestamp: h("Caseflow-Timestamp"),
                    signature: h("Caseflow-Signature"),
                    body,
                });
                if all.len() == 1 {
                    HttpResponse::InternalServerError().finish()
                } else {
                    HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://{addr}/hook"), inbox, handle)
}

/// Checks `t=…,v1=…` against the secret, the timestamp header and the body.
fn verify(secret: &str, r: &Received) {
    let (t, v1) = r.signature.split_once(",v1=").expect("t=…,v1=…");
    let t = t.strip_prefix("t=").expect("t=");
    assert_eq!(t, r.timestamp);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", r.body).as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v1, expected, "signature of {}", r.body);
}

async fn signed_retried_logged_and_replayed(db: Db) {
    let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap()));
    let app = spawn_with_clock(
        settings(
            db,
            &[
                ("CASEFLOW__WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
                ("CASEFLOW__WEBHOOKS__RETRY_BASE_SECS", "1"),
                ("CASEFLOW__WEBHOOKS__RETRY_MAX_SECS", "1"),
                ("CASEFLOW__WEBHOOKS__POLL_MS", "100"),
                ("CASEFLOW__AUTH__JWT_TTL_SECS", "86400"),
            ],
        ),
        clock.clone(),
    )
    .await;
    let (url, inbox, handle) = receiver().await;
    // Refused: an unknown event type, a scheme other than http(s).
    app.post("/api/v1/webhooks", json!({"url": url, "events": ["case.exploded"]}))
        .await
        .expect_error(422, "validation_failed");
    app.post("/api/v1/webhooks", json!({"url": "ftp://example.org/x", "events": ["*"]}))
        .await
        .expect_error(422, "validation_failed");
    let hook = app
        .post(
            "/api/v1/webhooks",
            json!({"url": url, "events": ["case.created", "sla.breached"], "description": "test"}),
        )
        .await
        .expect(201);
    let secret = hook["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    app.post(
        "/api/v1/sla/policies",
        json!({
            "name": "Ten minutes",
            "targets": [{"metric": "first_response", "minutes": 10, "business_hours": false}]
        }),
    )
    .await
    .expect(201);

    let case_id = id(&app.new_case("hook@example.org", "Webhook me").await);
    // The first attempt gets a 500 and is logged with its retry a second later (server time,
    // which this test moves); the retry gets a 200: same delivery id.
    let first = eventually(20, "the first attempt logged", || async {
        let l = app.get(&format!("/api/v1/webhooks/{}/deliveries", id(&hook))).await.expect(200);
        let d = l["items"][0].clone();
        (d["attempts"] == 1).then_some(d)
    })
    .await;
    assert_eq!((first["status"].as_str(), first["last_status"].as_i64()), (Some("pending"), Some(500)));
    assert_eq!(first["next_attempt_at"], "2026-12-07T09:00:01Z");
    clock.set(Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 2).unwrap());
    let got = eventually(20, "two attempts at the receiver", || async {
        let all = inbox.lock().unwrap().clone();
        (all.len() >= 2).then_some(all)
    })
    .await;
    assert_eq!(got[0].delivery, got[1].delivery);
    for r in &got {
        assert_eq!(r.event, "case.created");
        verify(&secret, r);
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!((body["type"].as_str(), body["case_id"].as_str()), (Some("case.created"), Some(case_id.as_str())));
    }
    let log = eventually(10, "the delivery logged as delivered", || async {
        let l = app.get(&format!("/api/v1/webhooks/{}/deliveries", id(&hook))).await.expect(200);
        let items = l["items"].as_array().cloned().unwrap_or_default();
        items.iter().any(|d| d["status"] == "delivered").then_some(items)
    })
    .await;
    assert_eq!(log.len(), 1, "status changes are not subscribed: {log:?}");
    assert_eq!((log[0]["attempts"].as_i64(), log[0]["last_status"].as_i64()), (Some(2), Some(200)));

    // Replay: the same delivery again, a fresh signature.
    app.post(&format!("/api/v1/webhooks/deliveries/{}/replay", id(&log[0])), json!({})).await.expect(200);
    let got = eventually(10, "the replay", || async {
        let all = inbox.lock().unwrap().clone();
        (all.len() >= 3).then_some(all)
    })
    .await;
    assert_eq!(got[2].delivery, got[0].delivery);
    verify(&secret, &got[2]);

    // Left unanswered past its deadline: a signed sla.breached delivery.
    clock.set(Utc.with_ymd_and_hms(2026, 12, 7, 9, 11, 0).unwrap());
    app.app().sla_tick().await.expect("tick");
    let breach = eventually(15, "the sla.breached delivery", || async {
        let all = inbox.lock().unwrap().clone();
        all.into_iter().find(|r| r.event == "sla.breached")
    })
    .await;
    verify(&secret, &breach);
    let body: Value = serde_json::from_str(&breach.body).unwrap();
    assert_eq!(body["data"]["metric"], "first_response");
    assert_eq!(body["data"]["due_at"], "2026-12-07T09:10:00Z");

    // Deactivated: nothing more is delivered for new events.
    app.patch(&format!("/api/v1/webhooks/{}", id(&hook)), json!({"active": false})).await.expect(200);
    let before = inbox.lock().unwrap().len();
    app.new_case("quiet@example.org", "Not delivered").await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(inbox.lock().unwrap().len(), before);

    // The delivery log keeps finished deliveries for webhooks.retention_days (30 by default):
    // 29 days on nothing goes, 31 days on every one of them does.
    let log_url = format!("/api/v1/webhooks/{}/deliveries", id(&hook));
    let finished = eventually(10, "every delivery finished", || async {
        let l = app.get(&log_url).await.expect(200);
        let items = l["items"].as_array().cloned().unwrap_or_default();
        items.iter().all(|d| d["status"] != "pending").then_some(items.len())
    })
    .await;
    assert!(finished >= 2, "case.created and sla.breached at least: {finished}");
    clock.set(Utc.with_ymd_and_hms(2027, 1, 5, 9, 0, 0).unwrap());
    assert_eq!(app.app().purge_old_webhook_deliveries().await.expect("purge"), 0);
    clock.set(Utc.with_ymd_and_hms(2027, 1, 7, 9, 12, 0).unwrap());
    assert_eq!(app.app().purge_old_webhook_deliveries().await.expect("purge"), finished);
    // A month on, the morning's token has expired: log in again to read the log.
    let admin = app.login(ADMIN_EMAIL, PASSWORD).await;
    let l = app.call(reqwest::Method::GET, &log_url, Some(&admin), None).await.expect(200);
    assert_eq!(l["items"].as_array().map(Vec::len), Some(0), "{l}");
    handle.stop(true).await;
    app.stop().await;
}

both_backends!(db: signed_retried_logged_and_replayed);

/// With `webhooks.allow_private_targets` off (the default), a subscription to a loopback or
/// private target that got into the database anyway (saved while the setting was on, or
/// written by an older version) is refused when a delivery would go out: nothing reaches the
/// receiver, and the attempt is logged with the reason.
async fn private_targets_are_refused_at_delivery(db: Db) {
    use caseflow_store::models::WebhookSubscriptionRow;
    let app = spawn_with(db, &[("CASEFLOW__WEBHOOKS__POLL_MS", "100")]).await;
    let (url, inbox, handle) = receiver().await;
    let now = chrono::Utc::now().naive_utc();
    let hooks = [("wh-literal", url.clone()), ("wh-name", url.replace("127.0.0.1", "localhost"))];
    for (id, u) in hooks.clone() {
        let row = WebhookSubscriptionRow {
            id: id.into(),
            url: u,
            secret: "whsec_test".into(),
            events: r#"["case.created"]"#.into(),
            description: String::new(),
            active: true,
            created_at: now,
            updated_at: now,
        };
        app.app()
            .store()
            .write(move |c| {
                caseflow_store::queries::webhooks::insert(c, &row).map_err(caseflow_store::StoreError::from)
            })
            .unwrap();
    }
    app.new_case("inside@example.org", "Not for the neighbours").await;
    for (id, _) in hooks {
        let d = eventually(20, "the refused attempt logged", || async {
            let l = app.get(&format!("/api/v1/webhooks/{id}/deliveries")).await.expect(200);
            let d = l["items"][0].clone();
            (d["attempts"] == 1).then_some(d)
        })
        .await;
        assert_eq!(d["status"], "pending", "retried later, in case the setting changes: {d}");
        assert_eq!(d["last_error"], "refused: the target is a loopback or private address", "{d}");
        assert!(d["last_status"].is_null(), "{d}");
    }
    assert!(inbox.lock().unwrap().is_empty(), "nothing reached the receiver");
    handle.stop(true).await;
    app.stop().await;
}

both_backends!(db: private_targets_are_refused_at_delivery);
