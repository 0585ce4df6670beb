//! One customer across channels: identities, history, search, merge.

use crate::both_backends;
use crate::helpers::*;
use serde_json::json;

async fn a_customer_resolves_across_identities_and_channels(app: &TestApp) {
    let c = app
        .post(
            "/api/v1/customers",
            json!({"name": "Maria", "tier": "gold", "value": 48000,
                   "identities": [{"kind": "email", "value": "Maria@Example.com"}, {"kind": "external", "value": "CRM-1"}]}),
        )
        .await
        .expect(201);
    let cid = id(&c);
    assert_eq!(c["identities"].as_array().unwrap().len(), 2);
    assert_eq!(c["identities"][0]["value"], "maria@example.com", "emails are stored normalized");

    let by_email = app
        .post(
            "/api/v1/cases",
            json!({"subject": "Email", "body": "x", "channel": "email", "customer": {"email": "maria@EXAMPLE.com"}}),
        )
        .await
        .expect(201);
    let by_crm = app
        .post(
            "/api/v1/cases",
            json!({"subject": "Chat", "body": "y", "channel": "chat", "customer": {"external_id": "CRM-1"}}),
        )
        .await
        .expect(201);
    // Email and external id together teach the customer nothing new but must agree.
    let both = app
        .post("/api/v1/cases", json!({"subject": "Web", "body": "z", "channel": "web", "customer": {"email": "maria@example.com", "external_id": "CRM-1"}}))
        .await
        .expect(201);
    for case in [&by_email, &by_crm, &both] {
        assert_eq!(case["customer_id"], cid.as_str());
        assert_eq!(case["customer"]["tier"], "gold");
    }
    // A new identity given with a known one is learned.
    app.post(
        "/api/v1/cases",
        json!({"subject": "New id", "body": "z", "customer": {"email": "maria@example.com", "external_id": "SHOP-7"}}),
    )
    .await
    .expect(201);

    let detail = app.get(&format!("/api/v1/customers/{cid}")).await.expect(200);
    let channels: Vec<&str> =
        detail["cases"].as_array().unwrap().iter().map(|c| c["channel"].as_str().unwrap()).collect();
    assert_eq!(channels, ["api", "web", "chat", "email"], "history across channels, newest first");
    assert_eq!(detail["identities"].as_array().unwrap().len(), 3);

    // Conflicting identities are refused rather than guessed.
    app.post(
        "/api/v1/customers",
        json!({"name": "Other", "identities": [{"kind": "email", "value": "other@example.com"}]}),
    )
    .await
    .expect(201);
    app.post(
        "/api/v1/cases",
        json!({"subject": "?", "body": "?", "customer": {"email": "other@example.com", "external_id": "CRM-1"}}),
    )
    .await
    .expect_error(422, "validation_failed");
    // Duplicate identity on create: 409.
    app.post("/api/v1/customers", json!({"identities": [{"kind": "email", "value": "maria@example.com"}]}))
        .await
        .expect_error(409, "already_exists");
}

async fn customers_can_be_searched_updated_and_merged_with_an_audit_trail(app: &TestApp) {
    let a = app.new_case("pat@home.example", "From home").await;
    let b = app.new_case("pat@work.example", "From work").await;
    let (a_cust, b_cust) =
        (a["customer_id"].as_str().unwrap().to_owned(), b["customer_id"].as_str().unwrap().to_owned());
    assert_ne!(a_cust, b_cust);

    let found = app.get("/api/v1/customers?q=WORK.example").await.expect(200);
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(id(&found["items"][0]), b_cust);

    let updated = app
        .patch(&format!("/api/v1/customers/{a_cust}"), json!({"name": "Pat Smith", "tier": "silver", "version": 1}))
        .await
        .expect(200);
    assert_eq!(updated["name"], "Pat Smith");
    assert_eq!(updated["version"], 2);
    app.patch(&format!("/api/v1/customers/{a_cust}"), json!({"name": "Stale", "version": 1}))
        .await
        .expect_error(409, "version_conflict");

    let merged = app.post(&format!("/api/v1/customers/{a_cust}/merge"), json!({"source_id": b_cust})).await.expect(200);
    assert_eq!(merged["identities"].as_array().unwrap().len(), 2);
    assert_eq!(merged["cases"].as_array().unwrap().len(), 2);
    let last = merged["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "customer_merged");
    assert_eq!(last["data"]["source_id"], b_cust.as_str());
    assert_eq!(last["data"]["case_ids"].as_array().unwrap().len(), 1);

    let source = app.get(&format!("/api/v1/customers/{b_cust}")).await.expect(200);
    assert_eq!(source["merged_into"], a_cust.as_str());
    assert_eq!(source["events"].as_array().unwrap().last().unwrap()["kind"], "merged_into");
    // The merged-away customer no longer lists; new mail from its address lands on the target.
    let list = app.get("/api/v1/customers").await.expect(200);
    assert!(list["items"].as_array().unwrap().iter().all(|c| id(c) != b_cust));
    let later = app.new_case("pat@work.example", "Again").await;
    assert_eq!(later["customer_id"], a_cust.as_str());
    // The moved case records the merge.
    let events = app.get(&format!("/api/v1/cases/{}/events", id(&b))).await.expect(200);
    assert_eq!(events["items"].as_array().unwrap().last().unwrap()["kind"], "customer_merged");

    app.post(&format!("/api/v1/customers/{a_cust}/merge"), json!({"source_id": a_cust}))
        .await
        .expect_error(422, "validation_failed");
    app.post(&format!("/api/v1/customers/{a_cust}/merge"), json!({"source_id": b_cust}))
        .await
        .expect_error(409, "invalid_transition");

    let with_chat = app
        .post(&format!("/api/v1/customers/{a_cust}/identities"), json!({"kind": "chat_visitor", "value": "v-123"}))
        .await
        .expect(201);
    assert_eq!(with_chat["identities"].as_array().unwrap().len(), 3);
    app.post(&format!("/api/v1/customers/{a_cust}/identities"), json!({"kind": "email", "value": "broken"}))
        .await
        .expect_error(422, "validation_failed");

    // Undo the merge: what it moved goes back; the case opened since ("Again") stays.
    app.post(&format!("/api/v1/customers/{a_cust}/unmerge"), json!({})).await.expect_error(409, "invalid_transition");
    let restored = app.post(&format!("/api/v1/customers/{b_cust}/unmerge"), json!({})).await.expect(200);
    assert!(restored["merged_into"].is_null(), "{restored}");
    let idents: Vec<&str> =
        restored["identities"].as_array().unwrap().iter().map(|i| i["value"].as_str().unwrap()).collect();
    assert_eq!(idents, ["pat@work.example"]);
    let cases: Vec<String> = restored["cases"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(cases, [id(&b)]);
    assert_eq!(restored["events"].as_array().unwrap().last().unwrap()["kind"], "unmerged_from");
    let target = app.get(&format!("/api/v1/customers/{a_cust}")).await.expect(200);
    assert_eq!(target["identities"].as_array().unwrap().len(), 2, "pat@home and the chat id stay: {target}");
    let target_cases: Vec<String> = target["cases"].as_array().unwrap().iter().map(id).collect();
    assert!(target_cases.contains(&id(&later)) && target_cases.contains(&id(&a)), "{target_cases:?}");
    assert_eq!(target["events"].as_array().unwrap().last().unwrap()["kind"], "customer_unmerged");
    let events = app.get(&format!("/api/v1/cases/{}/events", id(&b))).await.expect(200);
    assert_eq!(events["items"].as_array().unwrap().last().unwrap()["kind"], "customer_unmerged");
    // Mail from the work address finds Pat-at-work again.
    let after = app.new_case("pat@work.example", "After the split").await;
    assert_eq!(after["customer_id"], b_cust.as_str());
    app.post(&format!("/api/v1/customers/{b_cust}/unmerge"), json!({})).await.expect_error(409, "invalid_transition");
}

both_backends!(
    a_customer_resolves_across_identities_and_channels,
    customers_can_be_searched_updated_and_merged_with_an_audit_trail,
);
