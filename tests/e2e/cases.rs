//! Cases: create, read, list with filters and cursors, update, messages, audit log.

use crate::both_backends;
use crate::helpers::*;
use caseflow_store::queries;
use serde_json::{json, Value};

async fn creating_a_case_records_customer_message_and_audit_event(app: &TestApp) {
    let r = app
        .post(
            "/api/v1/cases",
            json!({"subject": "  Invoice wrong ", "body": "My invoice shows 3 seats, we have 2.",
                   "customer": {"email": "Jane.Doe@Example.org", "name": "Jane Doe"}, "priority": "high", "channel": "email"}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let location = r.headers.get("location").unwrap().to_str().unwrap().to_owned();
    assert_eq!(r.headers.get("etag").unwrap(), "\"1\"");
    let case = r.body;
    assert_eq!(location, format!("/api/v1/cases/{}", id(&case)));
    assert_eq!(case["subject"], "Invoice wrong");
    assert_eq!(case["status"], "new");
    assert_eq!(case["priority"], "high");
    assert_eq!(case["channel"], "email");
    assert_eq!(case["customer"]["name"], "Jane Doe");
    assert!(case["number"].as_i64().unwrap() >= 1001);
    assert!(case["created_at"].as_str().unwrap().ends_with('Z'), "RFC 3339 UTC: {}", case["created_at"]);

    let fetched = app.get(&location).await.expect(200);
    assert_eq!(fetched, case);

    let msgs = app.get(&format!("{location}/messages")).await.expect(200);
    assert_eq!(msgs["items"].as_array().unwrap().len(), 1);
    assert_eq!(msgs["items"][0]["direction"], "inbound");
    assert_eq!(msgs["items"][0]["author_kind"], "customer");
    assert_eq!(msgs["items"][0]["body_text"], "My invoice shows 3 seats, we have 2.");

    let events = app.get(&format!("{location}/events")).await.expect(200);
    assert_eq!(events["items"][0]["kind"], "case_created");
    assert_eq!(events["items"][0]["actor_kind"], "agent");

    // A second case from the same address (any case) belongs to the same customer.
    let again = app.new_case("jane.doe@example.org", "Another question").await;
    assert_eq!(again["customer_id"], case["customer_id"]);
    assert_eq!(again["number"].as_i64().unwrap(), case["number"].as_i64().unwrap() + 1);
}

async fn reply_writes_an_outbound_message_and_an_outbox_row_in_one_go(app: &TestApp) {
    let case = app.new_case("bob@example.org", "Login broken").await;
    let path = format!("/api/v1/cases/{}", id(&case));
    let reply = app
        .post(
            &format!("{path}/messages"),
            json!({"kind": "reply", "body": "We reset your session; try again.", "status": "pending"}),
        )
        .await
        .expect(201);
    assert_eq!(reply["direction"], "outbound");
    assert_eq!(reply["delivery_status"], "queued");
    let note = app
        .post(&format!("{path}/messages"), json!({"kind": "note", "body": "Customer sounded upset."}))
        .await
        .expect(201);
    assert_eq!(note["direction"], "note");

    let after = app.get(&path).await.expect(200);
    assert_eq!(after["status"], "pending");
    assert!(after["first_response_at"].is_string());

    let case_id = id(&case);
    let outbox = app
        .app()
        .store()
        .read(move |c| queries::events::outbox_for_case(c, &case_id).map_err(caseflow_store::StoreError::from))
        .unwrap();
    assert_eq!(outbox.len(), 1, "only the reply goes out, not the note");
    assert_eq!(outbox[0].kind, "reply.email", "API cases are answered by email");
    assert_eq!(outbox[0].status, "pending");
    assert!(outbox[0].payload.contains(reply["id"].as_str().unwrap()));

    // A customer message reopens the pending case.
    app.post(&format!("{path}/messages"), json!({"kind": "inbound", "body": "Still broken."})).await.expect(201);
    assert_eq!(app.get(&path).await.expect(200)["status"], "open");

    let kinds: Vec<String> = app.get(&format!("{path}/events")).await.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["case_created", "message_added", "status_changed", "message_added", "message_added", "status_changed"]
    );
}

async fn list_filters_and_cursor_pagination(app: &TestApp) {
    let (agent_id, _) = app.agent("worker@caseflow.test", "agent").await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let c = app.new_case(&format!("c{i}@example.org"), &format!("Subject number {i}")).await;
        ids.push(id(&c));
    }
    app.patch(&format!("/api/v1/cases/{}", ids[0]), json!({"priority": "urgent", "assignee_id": agent_id}))
        .await
        .expect(200);
    app.patch(&format!("/api/v1/cases/{}", ids[1]), json!({"status": "open"})).await.expect(200);

    // Newest first, three at a time, no duplicates, no gaps.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/cases?limit=3&cursor={c}"),
            None => "/api/v1/cases?limit=3".to_owned(),
        };
        let page = app.get(&q).await.expect(200);
        for item in page["items"].as_array().unwrap() {
            seen.push(id(item));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);

    let oldest = app.get("/api/v1/cases?sort=created_at&limit=1").await.expect(200);
    assert_eq!(id(&oldest["items"][0]), ids[0]);

    let only = |v: Value| v["items"].as_array().unwrap().iter().map(id).collect::<Vec<_>>();
    assert_eq!(only(app.get("/api/v1/cases?priority=urgent").await.expect(200)), vec![ids[0].clone()]);
    assert_eq!(only(app.get(&format!("/api/v1/cases?assignee={agent_id}")).await.expect(200)), vec![ids[0].clone()]);
    assert_eq!(only(app.get("/api/v1/cases?status=open").await.expect(200)), vec![ids[1].clone()]);
    assert_eq!(app.get("/api/v1/cases?status=new,open").await.expect(200)["items"].as_array().unwrap().len(), 7);
    assert_eq!(app.get("/api/v1/cases?assignee=none").await.expect(200)["items"].as_array().unwrap().len(), 6);
    assert_eq!(only(app.get("/api/v1/cases?q=NUMBER%203").await.expect(200)), vec![ids[3].clone()]);
    assert_eq!(app.get("/api/v1/cases?channel=chat").await.expect(200)["items"].as_array().unwrap().len(), 0);
    let first = app.get(&format!("/api/v1/cases/{}", ids[2])).await.expect(200);
    let by_number = app.get(&format!("/api/v1/cases?q=%23{}", first["number"])).await.expect(200);
    assert_eq!(only(by_number), vec![ids[2].clone()]);
    let customer = first["customer_id"].as_str().unwrap();
    assert_eq!(only(app.get(&format!("/api/v1/cases?customer={customer}")).await.expect(200)), vec![ids[2].clone()]);

    // Bad filter values are refused, not ignored.
    app.get("/api/v1/cases?status=bogus").await.expect_error(422, "validation_failed");
    app.get("/api/v1/cases?limit=0").await.expect_error(422, "validation_failed");
    app.get("/api/v1/cases?limit=abc").await.expect_error(400, "invalid_parameter");
    app.get("/api/v1/cases?colour=red").await.expect_error(400, "invalid_parameter");
    app.get("/api/v1/cases?sort=subject").await.expect_error(422, "validation_failed");
}

async fn updates_use_optimistic_concurrency_and_the_state_machine(app: &TestApp) {
    let case = app.new_case("eve@example.org", "Refund").await;
    let path = format!("/api/v1/cases/{}", id(&case));
    let v1 = app.patch(&path, json!({"status": "open", "version": 1})).await;
    assert_eq!(v1.headers.get("etag").unwrap(), "\"2\"");
    assert_eq!(v1.expect(200)["version"], 2);
    // Stale version in the body or in If-Match: 409.
    app.patch(&path, json!({"status": "pending", "version": 1})).await.expect_error(409, "version_conflict");
    let stale = app
        .client
        .patch(format!("{}{path}", app.base))
        .bearer_auth(&app.admin)
        .header("If-Match", "\"1\"")
        .json(&json!({"priority": "low"}));
    app.send(stale).await.expect_error(409, "version_conflict");
    let fresh = app
        .client
        .patch(format!("{}{path}", app.base))
        .bearer_auth(&app.admin)
        .header("If-Match", "\"2\"")
        .json(&json!({"priority": "low"}));
    assert_eq!(app.send(fresh).await.expect(200)["priority"], "low");
    // Illegal transitions.
    app.patch(&path, json!({"status": "new"})).await.expect_error(409, "invalid_transition");
    app.patch(&path, json!({"status": "closed"})).await.expect_error(409, "invalid_transition");
    let solved = app.patch(&path, json!({"status": "solved"})).await.expect(200);
    assert!(solved["solved_at"].is_string());
    let closed = app.patch(&path, json!({"status": "closed"})).await.expect(200);
    assert!(closed["closed_at"].is_string());
    // A closed case takes no more changes or replies.
    app.patch(&path, json!({"priority": "high"})).await.expect_error(409, "invalid_transition");
    app.post(&format!("{path}/messages"), json!({"kind": "reply", "body": "hello?"}))
        .await
        .expect_error(409, "invalid_transition");
    // Team and assignee must exist; null clears them.
    app.patch(&path.replace(&id(&case), &id(&app.new_case("f@example.org", "x").await)), json!({"team_id": "nope"}))
        .await
        .expect_error(422, "validation_failed");
}

async fn external_ids_make_creation_idempotent(app: &TestApp) {
    let body = json!({"subject": "Webhook relay", "body": "hi", "customer": {"email": "dup@example.org"}, "external_id": "msg-42"});
    let first = app.post("/api/v1/cases", body.clone()).await.expect(201);
    let second = app.post("/api/v1/cases", body).await.expect(200);
    assert_eq!(first["id"], second["id"]);
    assert_eq!(app.get("/api/v1/cases").await.expect(200)["items"].as_array().unwrap().len(), 1);
}

async fn concurrent_creates_from_one_new_address_make_one_customer(app: &TestApp) {
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (client, base, token) = (app.client.clone(), app.base.clone(), app.admin.clone());
        tasks.push(tokio::spawn(async move {
            client
                .post(format!("{base}/api/v1/cases"))
                .bearer_auth(token)
                .json(
                    &json!({"subject": format!("burst {i}"), "body": "x", "customer": {"email": "burst@example.org"}}),
                )
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }));
    }
    let mut customers = std::collections::HashSet::new();
    let mut numbers = std::collections::HashSet::new();
    for t in tasks {
        let c = t.await.unwrap();
        customers.insert(c["customer_id"].as_str().expect("created").to_owned());
        numbers.insert(c["number"].as_i64().unwrap());
    }
    assert_eq!(customers.len(), 1, "one address, one customer");
    assert_eq!(numbers.len(), 6, "case numbers are unique");
}

both_backends!(
    creating_a_case_records_customer_message_and_audit_event,
    reply_writes_an_outbound_message_and_an_outbox_row_in_one_go,
    list_filters_and_cursor_pagination,
    updates_use_optimistic_concurrency_and_the_state_machine,
    external_ids_make_creation_idempotent,
    concurrent_creates_from_one_new_address_make_one_customer,
);
