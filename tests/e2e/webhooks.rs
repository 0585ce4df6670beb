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
pub struct Received {
    pub event: String,
    pub delivery: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

pub type Inbox = Arc<Mutex<Vec<Received>>>;

/// A receiver on loopback that keeps every request; it answers 200, or 500 to the first
/// request and 200 to the others when `fail_first`.
pub async fn receiver_with(fail_first: bool) -> (String, Inbox, actix_web::dev::ServerHandle) {
    let inbox: Inbox = Arc::new(Mutex::new(Vec::new()));
    let data = web::Data::new(inbox.clone());
    let server = HttpServer::new(move || {
        Actix::new().app_data(data.clone()).route(
            "/hook",
            web::post().to(move |req: HttpRequest, body: String, inbox: web::Data<Inbox>| async move {
                let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let mut all = inbox.lock().unwrap();
                all.push(Received {
                    event: h("Caseflow-Event"),
                    delivery: h("Caseflow-Delivery"),
                    timestamp: h("Caseflow-Timestamp"),
                    signature: h("Caseflow-Signature"),
                    body,
                });
                if fail_first && all.len() == 1 {
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
/// [`receiver_with`] failing the first request (to see the retry).
async fn receiver() -> (String, Inbox, actix_web::dev::ServerHandle) {
    receiver_with(true).await
}

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
            previous_secret: None,
            previous_secret_expires_at: None,
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

/// The `v1` signatures of a received delivery, checked against `secrets` in order: each must be
/// HMAC-SHA256 of `timestamp.body` under the secret in the same place.
fn verify_all(secrets: &[&str], r: &Received) {
    let mut parts = r.signature.split(',');
    let t = parts.next().and_then(|p| p.strip_prefix("t=")).expect("t=…");
    assert_eq!(t, r.timestamp);
    let v1: Vec<&str> = parts.map(|p| p.strip_prefix("v1=").expect("v1=…")).collect();
    let expected: Vec<String> = secrets
        .iter()
        .map(|secret| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(format!("{t}.{}", r.body).as_bytes());
            mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
        })
        .collect();
    assert_eq!(v1, expected, "signatures of {}", r.body);
}

/// Rotating a subscription's secret: the answer carries the new secret; until the previous one
/// expires every delivery is signed with both (new first), afterwards with the new one only.
async fn secrets_rotate_with_an_overlap(db: Db) {
    let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap()));
    let app = spawn_with_clock(
        settings(
            db,
            &[
                ("CASEFLOW__WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
                ("CASEFLOW__WEBHOOKS__POLL_MS", "100"),
                ("CASEFLOW__AUTH__JWT_TTL_SECS", "86400"),
            ],
        ),
        clock.clone(),
    )
    .await;
    let (url, inbox, handle) = receiver().await;
    let hook = app.post("/api/v1/webhooks", json!({"url": url, "events": ["case.created"]})).await.expect(201);
    let old = hook["secret"].as_str().unwrap().to_owned();
    let rotate = format!("/api/v1/webhooks/{}/rotate-secret", id(&hook));
    for bad in [json!({"expire_previous_in_secs": 604_801}), json!({"expire_previous_in_secs": -1})] {
        app.post(&rotate, bad).await.expect_error(422, "validation_failed");
    }
    app.post("/api/v1/webhooks/nope/rotate-secret", json!({})).await.expect_error(404, "not_found");
    let rotated = app.post(&rotate, json!({"expire_previous_in_secs": 3600})).await.expect(200);
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old, "{rotated}");
    assert_eq!(rotated["previous_secret_expires_at"], "2026-12-07T10:00:00Z");
    let shown = app.get(&format!("/api/v1/webhooks/{}", id(&hook))).await.expect(200);
    assert_eq!(
        (&shown["secret"], &shown["previous_secret_expires_at"]),
        (&rotated["secret"], &rotated["previous_secret_expires_at"])
    );

    let received_for = |case_id: String| {
        let inbox = inbox.clone();
        async move {
            eventually(20, "the delivery at the receiver", || async {
                let all = inbox.lock().unwrap().clone();
                all.into_iter().rev().find(|r| r.body.contains(&case_id))
            })
            .await
        }
    };
    // During the overlap: both signatures, the new secret's first.
    let during = id(&app.new_case("overlap@example.org", "Signed twice").await);
    verify_all(&[&new, &old], &received_for(during).await);

    // After it: the new secret only, and the subscription no longer shows an overlap.
    clock.set(Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 1).unwrap());
    let shown = app.get(&format!("/api/v1/webhooks/{}", id(&hook))).await.expect(200);
    assert!(shown.get("previous_secret_expires_at").is_none(), "{shown}");
    let after = id(&app.new_case("after@example.org", "Signed once").await);
    verify_all(&[&new], &received_for(after).await);

    // No overlap asked: the previous secret stops at once.
    let third = app.post(&rotate, json!({"expire_previous_in_secs": 0})).await.expect(200);
    assert!(third.get("previous_secret_expires_at").is_none(), "{third}");
    let newest = third["secret"].as_str().unwrap().to_owned();
    let last = id(&app.new_case("newest@example.org", "Newest only").await);
    verify_all(&[&newest], &received_for(last).await);
    handle.stop(true).await;
    app.stop().await;
}

both_backends!(db: secrets_rotate_with_an_overlap);
