//! Email intake through `POST /api/v1/inbound/email`: threading, loop and bounce safety,
//! deduplication and quarantine.

use crate::both_backends;
use crate::helpers::*;
use serde_json::{json, Value};

fn email(from: &str, subject: &str, extra_headers: &str, body: &str) -> String {
    crate::helpers::email(from, subject, extra_headers, body).1
}

async fn receive(app: &TestApp, raw: &str) -> Value {
    app.send(
        app.client
            .post(format!("{}/api/v1/inbound/email?source=test", app.base))
            .bearer_auth(&app.admin)
            .header("Content-Type", "message/rfc822")
            .body(raw.to_owned()),
    )
    .await
    .expect(200)
}

/// The newest message of a case carrying a Message-ID header (not in the API view).
fn last_with_message_id(app: &TestApp, case_id: &str) -> caseflow_store::models::MessageRow {
    let cid = case_id.to_owned();
    app.app()
        .store()
        .read(move |c| {
            caseflow_store::queries::messages::last_with_message_id(c, &cid).map_err(caseflow_store::StoreError::from)
        })
        .unwrap()
        .expect("a message with a Message-ID")
}

async fn a_new_email_opens_a_case_and_a_reply_threads_back(app: &TestApp) {
    let first =
        receive(app, &email("Jane Roe <Jane@Example.org>", "Printer on fire", "", "It is on fire.\r\n\r\n-- \r\nJane"))
            .await;
    assert_eq!(first["outcome"], "case_created");
    assert_eq!(first["duplicate"], false);
    let case_id = first["case_id"].as_str().unwrap().to_owned();
    let case = app.get(&format!("/api/v1/cases/{case_id}")).await.expect(200);
    assert_eq!(case["channel"], "email");
    assert_eq!(case["subject"], "Printer on fire");
    assert_eq!(case["customer"]["name"], "Jane Roe");
    let msgs = messages(app, &case_id).await;
    assert_eq!(msgs[0]["body_text"], "It is on fire.", "signature stripped");
    assert!(msgs[0]["body_full"].as_str().unwrap().contains("Jane"));
    assert_eq!(msgs[0]["thread_rule"], "new");

    // The agent replies: the outbound message carries our Message-ID.
    let reply = app
        .post(
            &format!("/api/v1/cases/{case_id}/messages"),
            json!({"kind": "reply", "body": "Unplug it.", "status": "pending"}),
        )
        .await
        .expect(201);
    let all = messages(app, &case_id).await;
    assert_eq!(all.iter().find(|m| m["id"] == reply["id"]).unwrap()["direction"], "outbound");
    // The Message-ID header is not in the view; read it through the store.
    let stored = last_with_message_id(app, &case_id);
    assert_eq!(stored.id, reply["id"].as_str().unwrap());
    let ours = stored.message_id_header.unwrap();
    assert!(ours.ends_with("@caseflow.localhost"), "{ours}");

    // The customer answers in the thread, from another client, with no subject tag.
    let answer = receive(
        app,
        &email(
            "jane@example.org",
            "Re: Printer on fire",
            &format!("In-Reply-To: <{ours}>\r\nReferences: <{ours}>\r\n"),
            "Done, thanks.\r\n\r\nOn Mon, Support wrote:\r\n> Unplug it.",
        ),
    )
    .await;
    assert_eq!(answer["outcome"], "threaded");
    assert_eq!(answer["reason"], "message_id");
    assert_eq!(answer["case_id"], case_id.as_str());
    assert_eq!(
        app.get(&format!("/api/v1/cases/{case_id}")).await.expect(200)["status"],
        "open",
        "the reply reopened the pending case"
    );
    let msgs = messages(app, &case_id).await;
    assert_eq!(msgs.last().unwrap()["body_text"], "Done, thanks.");
}

async fn subject_tags_thread_only_for_the_cases_customer(app: &TestApp) {
    let first = receive(app, &email("ann@example.org", "Invoice question", "", "Hi")).await;
    let case_id = first["case_id"].as_str().unwrap().to_owned();
    let number = app.get(&format!("/api/v1/cases/{case_id}")).await.expect(200)["number"].as_i64().unwrap();
    let tagged =
        receive(app, &email("ann@example.org", &format!("Re: [#{number}] Invoice question"), "", "More detail")).await;
    assert_eq!(tagged["outcome"], "threaded");
    assert_eq!(tagged["reason"], "subject_tag");
    // Someone else quoting the tag does not get into Ann's case.
    let stranger =
        receive(app, &email("mallory@example.net", &format!("Re: [#{number}] Invoice question"), "", "Let me in"))
            .await;
    assert_eq!(stranger["outcome"], "case_created");
    assert_ne!(stranger["case_id"], case_id.as_str());
    // The same subject from two customers never merges.
    let a = receive(app, &email("one@example.org", "Login broken", "", "a")).await;
    let b = receive(app, &email("two@example.org", "Login broken", "", "b")).await;
    assert_ne!(a["case_id"], b["case_id"]);
}

async fn loops_lists_auto_replies_and_bounces_never_open_cases(app: &TestApp) {
    let before = app.get("/api/v1/cases").await.expect(200)["items"].as_array().unwrap().len();
    let ignored = [
        email("someone@example.org", "Out of office", "Auto-Submitted: auto-replied\r\n", "I am away."),
        email("list@lists.example.org", "[dev] weekly digest", "List-Id: <dev.lists.example.org>\r\n", "digest"),
        email("someone@example.org", "loop", "X-Caseflow-Loop: 1\r\n", "ours"),
        email("MAILER-DAEMON@mx.example.org", "Undelivered Mail Returned to Sender", "", "could not deliver"),
    ];
    for raw in &ignored {
        let r = receive(app, raw).await;
        assert_eq!(r["outcome"], "ignored", "{r}");
        assert!(r["case_id"].is_null());
    }
    assert_eq!(app.get("/api/v1/cases").await.expect(200)["items"].as_array().unwrap().len(), before);

    // An auto-reply to an active case becomes a note on it, not a customer reply.
    let c = receive(app, &email("away@example.org", "Need help", "", "Help!")).await;
    let case_id = c["case_id"].as_str().unwrap().to_owned();
    let number = app.get(&format!("/api/v1/cases/{case_id}")).await.expect(200)["number"].as_i64().unwrap();
    let ooo = receive(
        app,
        &email(
            "away@example.org",
            &format!("Automatic reply: [#{number}] Need help"),
            "Auto-Submitted: auto-replied\r\n",
            "Back Monday.",
        ),
    )
    .await;
    assert_eq!(ooo["outcome"], "note_added");
    let last = messages(app, &case_id).await.pop().unwrap();
    assert_eq!(last["direction"], "note");
    assert_eq!(app.get(&format!("/api/v1/cases/{case_id}")).await.expect(200)["status"], "new");

    // A bounce of our reply marks it failed and tells the agent.
    app.post(&format!("/api/v1/cases/{case_id}/messages"), json!({"kind": "reply", "body": "Here is the fix."}))
        .await
        .expect(201);
    let ours = last_with_message_id(app, &case_id);
    let header = ours.message_id_header.clone().unwrap();
    let dsn = format!(
        "From: MAILER-DAEMON@mx.example.org\r\nTo: support@caseflow.test\r\nSubject: Undelivered Mail\r\nMessage-ID: <dsn-{}@mx.example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nMailbox full.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; away@example.org\r\nAction: failed\r\nStatus: 5.2.2\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@caseflow.test\r\nMessage-ID: <{header}>\r\n--b--\r\n",
        uuid::Uuid::now_v7().simple()
    );
    let b = receive(app, &dsn).await;
    assert_eq!(b["outcome"], "bounce_recorded", "{b}");
    assert_eq!(b["case_id"], case_id.as_str());
    let msgs = messages(app, &case_id).await;
    let failed = msgs.iter().find(|m| m["id"] == ours.id.as_str()).unwrap();
    assert_eq!(failed["delivery_status"], "failed");
    assert_eq!(msgs.last().unwrap()["direction"], "note");
}

async fn redelivery_is_deduplicated_and_closed_cases_spawn_linked_ones(app: &TestApp) {
    let raw = email("dup@example.org", "Once", "", "only once");
    let first = receive(app, &raw).await;
    let again = receive(app, &raw).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["case_id"], first["case_id"]);
    assert_eq!(again["id"], first["id"]);
    let case_id = first["case_id"].as_str().unwrap().to_owned();
    let number = app.get(&format!("/api/v1/cases/{case_id}")).await.expect(200)["number"].as_i64().unwrap();
    app.patch(&format!("/api/v1/cases/{case_id}"), json!({"status": "solved"})).await.expect(200);
    app.patch(&format!("/api/v1/cases/{case_id}"), json!({"status": "closed"})).await.expect(200);
    let late = receive(app, &email("dup@example.org", &format!("Re: [#{number}] Once"), "", "one more thing")).await;
    assert_eq!(late["outcome"], "case_created");
    let fresh = app.get(&format!("/api/v1/cases/{}", late["case_id"].as_str().unwrap())).await.expect(200);
    assert_eq!(fresh["linked_case_id"], case_id.as_str());
    // A solved case is reopened instead.
    let s = receive(app, &email("solved@example.org", "Fix it", "", "please")).await;
    let sid = s["case_id"].as_str().unwrap().to_owned();
    let snum = app.get(&format!("/api/v1/cases/{sid}")).await.expect(200)["number"].as_i64().unwrap();
    app.patch(&format!("/api/v1/cases/{sid}"), json!({"status": "solved"})).await.expect(200);
    let back = receive(app, &email("solved@example.org", &format!("Re: [#{snum}] Fix it"), "", "still broken")).await;
    assert_eq!(back["case_id"], sid.as_str());
    assert_eq!(app.get(&format!("/api/v1/cases/{sid}")).await.expect(200)["status"], "open");
}

async fn unusable_mail_is_quarantined_listed_and_kept_raw(app: &TestApp) {
    let raw = "Subject: who sent this?\r\nMessage-ID: <anon-1@example.org>\r\n\r\nno sender\r\n";
    let q = receive(app, raw).await;
    assert_eq!(q["outcome"], "quarantined");
    assert!(q["reason"].as_str().unwrap().starts_with("no_sender"), "{q}");
    let list = app.get("/api/v1/inbound?outcome=quarantined").await.expect(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let body = app
        .client
        .get(format!("{}/api/v1/inbound/{id}/raw", app.base))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, raw, "kept byte for byte");
    // Reprocessing runs it again (still no sender: quarantined again, the old record resolved).
    let again = app.post(&format!("/api/v1/inbound/{id}/reprocess"), json!({})).await.expect(200);
    assert_eq!(again["outcome"], "quarantined");
    assert_eq!(again["duplicate"], false);
    app.post(&format!("/api/v1/inbound/{id}/reprocess"), json!({})).await.expect_error(409, "invalid_transition");
    // Oversized input is refused with 413, never half-stored.
    let huge = "x".repeat(app.settings.email.max_message_bytes + 1);
    let r = app
        .send(app.client.post(format!("{}/api/v1/inbound/email", app.base)).bearer_auth(&app.admin).body(huge))
        .await;
    r.expect_error(413, "payload_too_large");
}

both_backends!(
    a_new_email_opens_a_case_and_a_reply_threads_back,
    subject_tags_thread_only_for_the_cases_customer,
    loops_lists_auto_replies_and_bounces_never_open_cases,
    redelivery_is_deduplicated_and_closed_cases_spawn_linked_ones,
    unusable_mail_is_quarantined_listed_and_kept_raw,
);

/// Every file of the shared real-world corpus (`../shared/corpus/email`), sorted.
pub fn corpus_files() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/email");
    assert!(dir.is_dir(), "corpus missing at {}", dir.display());
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "eml" || x == "txt") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

async fn every_corpus_message_gets_an_outcome_and_none_is_lost(app: &TestApp) {
    let files = corpus_files();
    let mut outcomes = std::collections::BTreeMap::new();
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        let r = app
            .send(app.client.post(format!("{}/api/v1/inbound/email", app.base)).bearer_auth(&app.admin).body(raw))
            .await;
        assert_eq!(r.status.as_u16(), 200, "{}: {}", f.display(), r.body);
        *outcomes.entry(r.body["outcome"].as_str().unwrap().to_owned()).or_insert(0) += 1;
    }
    let recorded = app.get("/api/v1/inbound?limit=100").await.expect(200);
    assert!(!recorded["items"].as_array().unwrap().is_empty());
    let total: usize = outcomes.values().sum();
    assert_eq!(total, files.len());
    assert!(outcomes.get("case_created").copied().unwrap_or(0) > 0, "{outcomes:?}");
    assert!(outcomes.get("quarantined").copied().unwrap_or(0) > 0, "{outcomes:?}");
    assert!(outcomes.get("ignored").copied().unwrap_or(0) > 0, "{outcomes:?}");
}

both_backends!(every_corpus_message_gets_an_outcome_and_none_is_lost);
