//! The public support form: the HTML page without JavaScript, its JSON twin, validation,
//! the honeypot, upload limits and the per-IP rate limit, over real HTTP.

use crate::both_backends;
use crate::helpers::*;
use serde_json::{json, Value};

/// A `multipart/form-data` body as a browser sends it: text fields, then files.
pub fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("----cf{}", uuid::Uuid::now_v7().simple());
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    for (filename, ctype, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"attachments\"; filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts the HTML form; returns (status, page).
pub async fn post_form(app: &TestApp, fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (u16, String) {
    let (ctype, body) = multipart(fields, files);
    let res =
        app.client.post(format!("{}/support", app.base)).header("content-type", ctype).body(body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

async fn case_count(app: &TestApp) -> usize {
    app.get("/api/v1/cases?limit=100").await.expect(200)["items"].as_array().unwrap().len()
}

fn case_number_in(page: &str) -> i64 {
    let marker = "<strong class=\"cf-case-number\">#";
    let start = page.find(marker).unwrap_or_else(|| panic!("no case number in {page}")) + marker.len();
    page[start..].split('<').next().unwrap().parse().unwrap()
}

async fn case_by_number(app: &TestApp, number: i64) -> Value {
    let list = app.get(&format!("/api/v1/cases?q={number}")).await.expect(200);
    list["items"].as_array().unwrap().iter().find(|c| c["number"] == number).cloned().expect("case by number")
}

async fn the_html_form_opens_a_web_case_for_the_same_customer(app: &TestApp) {
    // The customer wrote by email before (here: relayed through the API).
    let earlier = app.new_case("Ana.Lima@Example.org", "Earlier question").await;
    let customer_id = earlier["customer"]["id"].as_str().unwrap().to_owned();

    let page = app.client.get(format!("{}/support", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = page.text().await.unwrap();
    // Every visible field has a label bound to it; the honeypot is hidden from people and
    // assistive technology; the form posts without JavaScript.
    for f in ["name", "email", "topic", "subject", "message", "attachments"] {
        assert!(page.contains(&format!("<label for=\"f-{f}\"")), "label for {f}: {page}");
        assert!(page.contains(&format!("id=\"f-{f}\"")), "field {f}: {page}");
    }
    assert!(page.contains("<div class=\"cf-hp\" aria-hidden=\"true\">"), "{page}");
    assert!(page.contains("method=\"post\" action=\"/support\" enctype=\"multipart/form-data\""), "{page}");
    assert!(!page.contains("<script"), "the form needs no script: {page}");
    let sid_marker = "name=\"submission_id\" value=\"";
    let sid = page[page.find(sid_marker).unwrap() + sid_marker.len()..].split('"').next().unwrap().to_owned();

    let pdf: &[u8] = b"%PDF-1.4 fake invoice";
    let fields = [
        ("submission_id", sid.as_str()),
        ("name", "Ana Lima"),
        ("email", "ana.lima@example.org"),
        ("topic", "billing"),
        ("subject", "Invoice <wrong>"),
        ("message", "The invoice shows the wrong amount."),
        ("website", ""),
    ];
    let (status, confirmation) =
        post_form(app, &fields, &[("/home/ana/docs/invoice.pdf", "application/pdf", pdf)]).await;
    assert_eq!(status, 200, "{confirmation}");
    let number = case_number_in(&confirmation);
    assert!(confirmation.contains("A confirmation is on its way to ana.lima@example.org"), "{confirmation}");

    let case = case_by_number(app, number).await;
    assert_eq!(case["channel"], "web");
    assert_eq!(case["status"], "new", "the acknowledgement is not an answer: {case}");
    assert_eq!(case["topic"], "billing");
    assert_eq!(case["subject"], "Invoice <wrong>");
    assert_eq!(case["customer_id"], customer_id.as_str(), "same customer as the earlier case");
    let case_id = case["id"].as_str().unwrap();
    let msgs = messages(app, case_id).await;
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(msgs[0]["direction"], "inbound");
    assert_eq!(msgs[0]["seq"], 1);
    let att = &msgs[0]["attachments"][0];
    assert_eq!(att["filename"], "invoice.pdf", "path stripped: {att}");
    assert_eq!(att["content_type"], "application/pdf");
    assert_eq!(att["size_bytes"], pdf.len());
    // The acknowledgement: an automatic reply queued for email, with the case number.
    assert_eq!(msgs[1]["direction"], "outbound");
    assert_eq!(msgs[1]["author_kind"], "system");
    assert_eq!(msgs[1]["delivery_status"], "queued");
    assert!(msgs[1]["body_text"].as_str().unwrap().contains(&format!("#{number}")), "{}", msgs[1]);
    let fresh = app.get(&format!("/api/v1/cases/{case_id}")).await.expect(200);
    assert!(fresh["first_response_at"].is_null(), "an acknowledgement is not a first response: {fresh}");

    // Sending the same form again (reload, double click) opens nothing new.
    let before = case_count(app).await;
    let (status, again) = post_form(app, &fields, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(case_number_in(&again), number);
    assert_eq!(case_count(app).await, before);

    // The customer's timeline holds both channels.
    let customer = app.get(&format!("/api/v1/customers/{customer_id}")).await.expect(200);
    let channels: Vec<&str> =
        customer["cases"].as_array().unwrap().iter().map(|c| c["channel"].as_str().unwrap()).collect();
    assert!(channels.contains(&"web") && channels.contains(&"api"), "{channels:?}");
}

async fn form_errors_are_shown_next_to_fields_and_nothing_is_stored(app: &TestApp) {
    let before = case_count(app).await;
    let fields = [
        ("name", "Bo <b>Bold</b>"),
        ("email", "not-an-address"),
        ("topic", "no-such-topic"),
        ("subject", "Help"),
        ("message", "   "),
    ];
    let (status, page) = post_form(app, &fields, &[]).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("role=\"alert\""), "an error summary: {page}");
    assert!(page.contains("Please correct 3 fields"), "{page}");
    for f in ["email", "topic", "message"] {
        assert!(page.contains(&format!("aria-describedby=\"e-{f}\"")), "{f} points at its error: {page}");
        assert!(page.contains(&format!("<p class=\"cf-error\" id=\"e-{f}\">")), "{f} error next to it: {page}");
        assert!(page.contains(&format!("<a href=\"#f-{f}\">")), "summary links to {f}: {page}");
    }
    assert!(!page.contains("aria-describedby=\"e-name\""), "name is fine: {page}");
    // What was typed is kept, escaped.
    assert!(page.contains("value=\"Bo &lt;b&gt;Bold&lt;/b&gt;\""), "{page}");
    assert!(!page.contains("<b>Bold</b>"), "{page}");
    assert_eq!(case_count(app).await, before);

    // The honeypot: a bot sees a success page; nothing is stored.
    let bot = [
        ("name", "Bot"),
        ("email", "bot@example.org"),
        ("topic", "general"),
        ("subject", "Cheap pills"),
        ("message", "Buy now"),
        ("website", "http://spam.example"),
    ];
    let (status, page) = post_form(app, &bot, &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("We have received your request"), "{page}");
    assert!(!page.contains("cf-case-number"), "{page}");
    assert_eq!(case_count(app).await, before);
    let r = app
        .call(reqwest::Method::GET, "/api/v1/customers?q=bot%40example.org", Some(&app.admin), None)
        .await
        .expect(200);
    assert_eq!(r["items"].as_array().unwrap().len(), 0, "no customer for the bot: {r}");

    // A body that is not a form.
    let res = app
        .client
        .post(format!("{}/support", app.base))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("garbage without the boundary")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("could not be read"));
    assert_eq!(case_count(app).await, before);
}

async fn the_json_endpoint_answers_with_codes(app: &TestApp) {
    let topics = app.call(reqwest::Method::GET, "/api/v1/public/topics", None, None).await.expect(200);
    let keys: Vec<&str> = topics["items"].as_array().unwrap().iter().map(|t| t["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["general", "billing", "technical", "complaint", "suggestion"]);

    let body = json!({
        "name": "Cy", "email": "cy@example.org", "subject": "Login", "message": "Cannot log in",
        "topic": "technical", "submission_id": "site-42",
    });
    let r = app.call(reqwest::Method::POST, "/api/v1/public/support", None, Some(body.clone())).await.expect(201);
    assert_eq!(r["created"], true);
    assert_eq!(r["acknowledgement_queued"], true);
    let number = r["case_number"].as_i64().unwrap();
    let again = app.call(reqwest::Method::POST, "/api/v1/public/support", None, Some(body)).await.expect(200);
    assert_eq!(again["case_number"], number);
    assert_eq!(again["created"], false);
    let case = case_by_number(app, number).await;
    assert_eq!(case["channel"], "web");
    // Another person's submission with the same id is their own case.
    let other = json!({
        "name": "Dee", "email": "dee@example.org", "subject": "Login", "message": "Me too",
        "topic": "technical", "submission_id": "site-42",
    });
    let r = app.call(reqwest::Method::POST, "/api/v1/public/support", None, Some(other)).await.expect(201);
    assert_ne!(r["case_number"], number);

    let before = case_count(app).await;
    let bad = json!({"name": "", "email": "x", "subject": "s", "message": "m", "topic": "general"});
    let e = app
        .call(reqwest::Method::POST, "/api/v1/public/support", None, Some(bad))
        .await
        .expect_error(422, "validation_failed");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("name:") && msg.contains("email:"), "{msg}");
    let spam = json!({"name": "B", "email": "b@example.org", "subject": "s", "message": "m", "topic": "general", "website": "x"});
    app.call(reqwest::Method::POST, "/api/v1/public/support", None, Some(spam))
        .await
        .expect_error(422, "validation_failed");
    let unknown = json!({"name": "B", "email": "b@example.org", "subject": "s", "message": "m", "phone": "1"});
    app.call(reqwest::Method::POST, "/api/v1/public/support", None, Some(unknown))
        .await
        .expect_error(422, "validation_failed");
    assert_eq!(case_count(app).await, before);
}

both_backends!(
    the_html_form_opens_a_web_case_for_the_same_customer,
    form_errors_are_shown_next_to_fields_and_nothing_is_stored,
    the_json_endpoint_answers_with_codes,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_are_limited_per_ip_and_uploads_by_size() {
    let app = spawn_with(
        Db::Sqlite,
        &[
            ("CASEFLOW__WEB_FORM__PER_IP_PER_MINUTE", "1"),
            ("CASEFLOW__WEB_FORM__PER_IP_BURST", "2"),
            ("CASEFLOW__WEB_FORM__MAX_UPLOAD_BYTES", "300000"),
            ("CASEFLOW__LIMITS__MAX_ATTACHMENT_BYTES", "200000"),
        ],
    )
    .await;
    let before = case_count(&app).await;
    // Too large in all: refused before anything is stored (and before the rate limit counts).
    let big = vec![b'x'; 310_000];
    let fields =
        [("name", "Di"), ("email", "di@example.org"), ("topic", "general"), ("subject", "s"), ("message", "m")];
    let (status, page) = post_form(&app, &fields, &[("big.bin", "application/octet-stream", &big)]).await;
    assert_eq!(status, 413, "{page}");
    assert!(page.contains("larger than"), "{page}");
    // One file over the per-file limit: a field error.
    let one = vec![b'y'; 250_000];
    let (status, page) = post_form(&app, &fields, &[("one.bin", "application/octet-stream", &one)]).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("one.bin is larger than 200000 bytes"), "{page}");
    assert_eq!(case_count(&app).await, before);

    // The bucket holds two (the 422 above took one); the third submission from this IP
    // is refused with the standard headers.
    let (status, page) = post_form(&app, &fields, &[]).await;
    assert_eq!(status, 200, "{page}");
    let (ctype, body) = multipart(&fields, &[]);
    let res =
        app.client.post(format!("{}/support", app.base)).header("content-type", ctype).body(body).send().await.unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(res.headers()["ratelimit-limit"], "2");
    let page = res.text().await.unwrap();
    assert!(page.contains("Too many requests from your network"), "{page}");
    assert!(page.contains("value=\"di@example.org\""), "the typed values are kept: {page}");
    let json_body =
        json!({"name": "Di", "email": "di@example.org", "subject": "s", "message": "m", "topic": "general"});
    let r = app.call(reqwest::Method::POST, "/api/v1/public/support", None, Some(json_body)).await;
    assert!(r.headers.contains_key("retry-after"));
    r.expect_error(429, "rate_limited");
    assert_eq!(case_count(&app).await, before + 1);
    let metrics = caseflow_app::App::render_metrics(app.app()).await.unwrap();
    assert!(
        metrics.contains("caseflow_submissions_rejected_total{channel=\"web\",reason=\"rate_limited\"} 2"),
        "{metrics}"
    );
    app.stop().await;
}
