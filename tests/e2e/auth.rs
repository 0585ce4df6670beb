//! Login, session tokens, API tokens, roles and scopes.

use crate::both_backends;
use crate::helpers::*;
use caseflow_app::auth::JwtKeys;
use caseflow_core::{AgentId, Role};
use reqwest::Method;
use serde_json::json;

async fn login_returns_a_working_token_and_refuses_bad_credentials(app: &TestApp) {
    let ok = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "ROOT@caseflow.test", "password": PASSWORD})),
        )
        .await;
    let body = ok.expect(200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["agent"]["email"], ADMIN_EMAIL);
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    let me = app.call(Method::GET, "/api/v1/me", Some(body["access_token"].as_str().unwrap()), None).await.expect(200);
    assert_eq!(me["role"], "admin");

    for (email, password) in
        [(ADMIN_EMAIL, "wrong-password"), ("nobody@caseflow.test", PASSWORD), ("not an email", PASSWORD)]
    {
        app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"email": email, "password": password})))
            .await
            .expect_error(401, "invalid_credentials");
    }
}

async fn missing_invalid_and_expired_tokens_get_401(app: &TestApp) {
    let r = app.call(Method::GET, "/api/v1/cases", None, None).await;
    assert_eq!(r.headers.get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer"));
    r.expect_error(401, "unauthenticated");
    app.call(Method::GET, "/api/v1/cases", Some("not-a-jwt"), None).await.expect_error(401, "unauthenticated");
    app.send(app.client.get(format!("{}/api/v1/cases", app.base)).header("Authorization", "Basic abc"))
        .await
        .expect_error(401, "unauthenticated");

    // A token signed with the right key that expired an hour ago.
    let s = &app.settings.auth;
    let keys = JwtKeys::new(s.jwt_secret.expose(), &s.issuer, s.jwt_ttl_secs);
    let me = app.get("/api/v1/me").await.expect(200);
    let past = chrono::Utc::now().timestamp() - 3600 - s.jwt_ttl_secs as i64;
    let expired = keys.issue(&AgentId::new(me["id"].as_str().unwrap()), Role::Admin, past).unwrap();
    app.call(Method::GET, "/api/v1/cases", Some(&expired), None).await.expect_error(401, "token_expired");

    // A token signed with another key.
    let forged = JwtKeys::new("someone-elses-secret-that-is-long-enough", &s.issuer, 900)
        .issue(&AgentId::new("x"), Role::Admin, chrono::Utc::now().timestamp())
        .unwrap();
    app.call(Method::GET, "/api/v1/cases", Some(&forged), None).await.expect_error(401, "unauthenticated");
}

async fn roles_are_enforced(app: &TestApp) {
    let (agent_id, agent) = app.agent("agent@caseflow.test", "agent").await;
    let (_, supervisor) = app.agent("sup@caseflow.test", "supervisor").await;
    // Agents may work cases but not administer.
    app.call(Method::GET, "/api/v1/cases", Some(&agent), None).await.expect(200);
    app.call(Method::POST, "/api/v1/teams", Some(&agent), Some(json!({"name": "X"})))
        .await
        .expect_error(403, "forbidden");
    app.call(
        Method::POST,
        "/api/v1/agents",
        Some(&supervisor),
        Some(json!({"email": "z@caseflow.test", "name": "Z", "role": "admin"})),
    )
    .await
    .expect_error(403, "forbidden");
    app.call(Method::GET, "/api/v1/api-tokens", Some(&agent), None).await.expect_error(403, "forbidden");
    // Presence: self yes, others only as supervisor.
    let admin_id = app.get("/api/v1/me").await.expect(200)["id"].as_str().unwrap().to_owned();
    app.call(
        Method::PUT,
        &format!("/api/v1/agents/{agent_id}/presence"),
        Some(&agent),
        Some(json!({"presence": "online"})),
    )
    .await
    .expect(200);
    app.call(
        Method::PUT,
        &format!("/api/v1/agents/{admin_id}/presence"),
        Some(&agent),
        Some(json!({"presence": "away"})),
    )
    .await
    .expect_error(403, "forbidden");
    let s = app
        .call(
            Method::PUT,
            &format!("/api/v1/agents/{agent_id}/presence"),
            Some(&supervisor),
            Some(json!({"presence": "away"})),
        )
        .await
        .expect(200);
    assert_eq!(s["presence"], "away");
    // An agent may take a case but not hand it to someone else.
    let case = app.new_case("jane@example.org", "Printer on fire").await;
    let path = format!("/api/v1/cases/{}", case["id"].as_str().unwrap());
    app.call(Method::PATCH, &path, Some(&agent), Some(json!({"assignee_id": admin_id})))
        .await
        .expect_error(403, "forbidden");
    let taken = app.call(Method::PATCH, &path, Some(&agent), Some(json!({"assignee_id": agent_id}))).await.expect(200);
    assert_eq!(taken["assignee_id"], agent_id.as_str());
}

async fn api_tokens_authenticate_respect_scopes_and_can_be_revoked(app: &TestApp) {
    let created =
        app.post("/api/v1/api-tokens", json!({"name": "CRM sync", "scopes": ["read", "write"]})).await.expect(201);
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("cfk_"));
    let id = created["id"].as_str().unwrap().to_owned();
    let case = app
        .call(
            Method::POST,
            "/api/v1/cases",
            Some(&token),
            Some(json!({"subject": "From CRM", "body": "Imported", "customer": {"external_id": "CRM-9"}})),
        )
        .await
        .expect(201);
    assert_eq!(case["channel"], "api");
    // The case's audit log names the integration.
    let events = app.get(&format!("/api/v1/cases/{}/events", case["id"].as_str().unwrap())).await.expect(200);
    assert_eq!(events["items"][0]["actor_kind"], "integration");
    assert_eq!(events["items"][0]["actor_id"], id.as_str());

    // The plaintext is never listed again.
    let list = app.get("/api/v1/api-tokens").await.expect(200);
    assert!(!list.to_string().contains(&token));
    assert_eq!(list["items"][0]["prefix"].as_str().unwrap(), &token[..10]);

    let reader = app.post("/api/v1/api-tokens", json!({"name": "BI", "scopes": ["read"]})).await.expect(201);
    let reader = reader["token"].as_str().unwrap();
    app.call(Method::GET, "/api/v1/cases", Some(reader), None).await.expect(200);
    app.call(
        Method::POST,
        "/api/v1/cases",
        Some(reader),
        Some(json!({"subject": "x", "body": "y", "customer": {"email": "a@b.co"}})),
    )
    .await
    .expect_error(403, "forbidden");
    app.call(Method::GET, "/api/v1/me", Some(reader), None).await.expect_error(403, "forbidden");

    let revoked = app.delete(&format!("/api/v1/api-tokens/{id}")).await.expect(200);
    assert!(revoked["revoked_at"].is_string());
    app.call(Method::GET, "/api/v1/cases", Some(&token), None).await.expect_error(401, "unauthenticated");
    app.post("/api/v1/api-tokens", json!({"name": "bad", "scopes": ["superuser"]}))
        .await
        .expect_error(422, "validation_failed");
    app.post("/api/v1/api-tokens", json!({"name": "none", "scopes": []})).await.expect_error(422, "validation_failed");
}

async fn deactivated_agents_cannot_log_in(app: &TestApp) {
    let (id, _) = app.agent("leaver@caseflow.test", "agent").await;
    app.patch(&format!("/api/v1/agents/{id}"), json!({"active": false})).await.expect(200);
    app.call(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"email": "leaver@caseflow.test", "password": PASSWORD})),
    )
    .await
    .expect_error(401, "invalid_credentials");
}

both_backends!(
    login_returns_a_working_token_and_refuses_bad_credentials,
    missing_invalid_and_expired_tokens_get_401,
    roles_are_enforced,
    api_tokens_authenticate_respect_scopes_and_can_be_revoked,
    deactivated_agents_cannot_log_in,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_api_tokens_are_cached_and_revocation_clears_the_cache() {
    let app = spawn(Db::Sqlite).await;
    let created = app.post("/api/v1/api-tokens", json!({"name": "cache", "scopes": ["read"]})).await.expect(201);
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let first = app.app().authenticate(&token).await.unwrap();
    // Revoke behind the app's back (as another node would): the cached verification still holds…
    let now = chrono::Utc::now().naive_utc();
    let id2 = id.clone();
    app.app()
        .store()
        .write(move |c| caseflow_store::queries::tokens::revoke(c, &id2, now).map_err(caseflow_store::StoreError::from))
        .unwrap();
    assert_eq!(app.app().authenticate(&token).await.unwrap(), first, "served from the cache");
    // …while a revocation through this node takes effect at once.
    app.delete(&format!("/api/v1/api-tokens/{id}")).await;
    assert!(app.app().authenticate(&token).await.is_err());
    app.stop().await;
}
