//! The agent inbox and supervisor console in a real headless Chromium, against the real
//! IMAP and SMTP servers: an agent logs in, sees a new email arrive live (no reload), opens
//! it (the markup an attacker put in it stays inert text), replies (the reply reaches the
//! SMTP server); a supervisor sees a breach alert appear live and acknowledges it. Cookie
//! sessions and CSRF protection are checked over plain HTTP too. Screenshots of the main
//! screens land in docs/screenshots/.

use crate::browser::Browser;
use crate::helpers::*;
use crate::mailservers::MailServers;
use caseflow_core::FixedClock;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

/// Monday 7 December 2026, 09:00 UTC.
fn monday_nine() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().expect("valid")
}

/// A multipart email whose text and HTML parts both carry markup meant to run in the inbox.
fn hostile_email(subject: &str) -> String {
    let mid = format!("{}@mail.example.org", uuid::Uuid::now_v7().simple());
    format!(
        "From: Ann Example <ann@example.org>\r\nTo: support@caseflow.localhost\r\nSubject: {subject}\r\n\
         Message-ID: <{mid}>\r\nDate: Mon, 07 Dec 2026 03:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         It is on fire. <script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">\r\n\
         --b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <p>It is <b>on fire</b>.</p><script>window.__xss = 3</script><img src=x onerror=\"window.__xss = 4\">\r\n\
         --b1--\r\n"
    )
}

async fn log_in(browser: &Browser, base: &str, email: &str) {
    log_in_with(browser, base, email, PASSWORD).await;
}

/// Clicks "Edit" on the admin list's row that shows `text`.
async fn edit_admin_row(browser: &Browser, text: &str) {
    let js = format!(
        "for (const tr of document.querySelectorAll('#cf-admin-list tbody tr')) if (tr.textContent.includes({text:?})) {{ tr.querySelector('button').click(); return true; }} return false;"
    );
    assert_eq!(browser.script(&js).await, true, "no admin row shows {text:?}");
}

async fn log_in_with(browser: &Browser, base: &str, email: &str, password: &str) {
    browser.goto(&format!("{base}/app")).await;
    browser.type_into("#cf-email", email).await;
    browser.type_into("#cf-password", password).await;
    browser.click("#cf-login-submit").await;
    browser.find("#cf-inbox-title").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_and_a_supervisor_work_in_chromium() {
    let servers = MailServers::start();
    // The server's clock starts at the real time (the page shows deadlines relative to it)
    // and is moved on by the test.
    let start = Utc::now();
    let clock = Arc::new(FixedClock::new(start));
    let mut s = servers.settings(Db::Sqlite, 50);
    s.auth.jwt_ttl_secs = 86_400; // the test moves the clock by an hour
    let app = spawn_with_clock(s, clock.clone()).await;
    // A calendar and a policy: first response within an hour, breaches alert the supervisors.
    let cal = json!({"name": "Always", "time_zone": "UTC",
        "hours": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": "00:00", "to": "24:00"}]});
    app.post("/api/v1/sla/calendars", cal).await.expect(201);
    let policy = json!({"name": "Standard", "calendar": "Always",
        "targets": [{"metric": "first_response", "minutes": 60}],
        "ladder": [{"on": "breach", "action": "alert_supervisors"}]});
    app.post("/api/v1/sla/policies", policy).await.expect(201);
    let (_, ann_token) = app.agent("ann.agent@caseflow.test", "agent").await;
    let (_, _) = app.agent("sue.supervisor@caseflow.test", "supervisor").await;
    let (_, bob) = app.agent("bob.agent@caseflow.test", "agent").await;
    let canned = app
        .post(
            "/api/v1/macros",
            json!({"name": "Technician", "body": "Hi {{customer.first_name}}, a technician is on the way."}),
        )
        .await
        .expect(201);
    let quiet = id(&app.new_case("quiet@example.org", "Nobody has answered this yet").await);

    let browser = Browser::start().await;
    log_in(&browser, &app.base, "ann.agent@caseflow.test").await;
    browser.goto(&format!("{}/app#/inbox/open", app.base)).await;
    browser.wait_text("#cf-case-rows", "Nobody has answered this yet").await;
    let open_count = |n: &str| format!("return document.getElementById('cf-count-open').textContent === '{n}';");
    browser.wait_true("one open case counted", &open_count("1")).await;

    // A new email arrives through the real IMAP server and shows up without a reload.
    browser.script("window.__marker = 'same page'; return true;").await;
    app.imap_connected("support").await;
    servers.append(&[hostile_email("Printer on fire")]).await;
    browser.wait_text("#cf-case-rows", "Printer on fire").await;
    browser.wait_true("two open cases counted", &open_count("2")).await;
    assert_eq!(browser.script("return window.__marker;").await, "same page", "the page was not reloaded");
    // Sorted by SLA due time, counts per view, deadlines relative to the server's clock.
    browser.wait_text("#cf-case-rows", "in 59m").await;
    browser.screenshot("inbox").await;

    // Open it: the markup is shown as text, nothing ran.
    // With the keyboard: Enter on the case's link opens it.
    browser.keys("#cf-case-rows tr:last-child a.cf-subject", "\u{E007}").await;
    browser.wait_text("#cf-case-title", "Printer on fire").await;
    let timeline = browser.wait_text("#cf-timeline", "It is on fire.").await;
    assert!(timeline.contains("<script>window.__xss = 1</script>"), "markup shown as text: {timeline}");
    browser.wait_text("#cf-sla", "first response").await;
    browser.wait_text("#cf-customer-name", "Ann Example").await;
    browser.click("#cf-timeline button.cf-link").await; // "Show formatted": a sandboxed frame
    browser.find("#cf-timeline iframe.cf-html[sandbox='']").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let inert = browser
        .script(
            "return [window.__xss === undefined, document.querySelectorAll('script').length, \
             document.querySelectorAll('#cf-main img').length];",
        )
        .await;
    assert_eq!(inert, json!([true, 1, 0]), "no injected script ran or was inserted");
    browser.script("window.scrollTo(0, 0); return true;").await;
    browser.screenshot("case").await;

    // A colleague has the case open and is writing: the agent is warned as soon as they
    // start too. The canned reply fills the composer with the customer's name.
    let hash = browser.script("return location.hash;").await;
    let case_id = hash.as_str().unwrap().trim_start_matches("#/case/").to_owned();
    let path = format!("/api/v1/cases/{case_id}/viewers/me");
    app.call(reqwest::Method::PUT, &path, Some(&bob), Some(json!({"composing": true}))).await.expect(200);
    browser.click(&format!("#cf-macro option[value='{}']", id(&canned))).await;
    browser
        .wait_true(
            "the canned reply in the composer",
            "return document.getElementById('cf-compose-body').value === 'Hi Ann, a technician is on the way.';",
        )
        .await;
    let warning = browser.wait_text("#cf-viewers", "writing a reply").await;
    assert!(warning.contains("Test Agent is writing a reply"), "{warning}");
    browser.screenshot("case-reply").await;
    // And the colleague sees that this agent is writing.
    let seen = app.call(reqwest::Method::PUT, &path, Some(&bob), Some(json!({"composing": false}))).await.expect(200);
    assert_eq!(seen["viewers"][0]["composing"], true, "{seen}");

    // Reply: it leaves through the outbox and reaches the SMTP server.
    browser.click("#cf-send").await;
    browser.wait_text("#cf-timeline", "Hi Ann, a technician is on the way.").await;
    // An internal note and a status change from the case view.
    browser.click("#cf-kind-note").await;
    browser.type_into("#cf-compose-body", "Technician booked for 14:00.").await;
    browser.click("#cf-send").await;
    browser.wait_text("#cf-timeline", "Technician booked for 14:00.").await;
    browser.click("#cf-status option[value='pending']").await;
    browser.wait_text("#cf-case-status", "pending").await;
    let stored = app.get(&format!("/api/v1/cases/{case_id}")).await.expect(200);
    assert_eq!(stored["status"], "pending");
    let msgs = messages(&app, &case_id).await;
    let note = msgs.iter().find(|m| m["body_text"] == "Technician booked for 14:00.").expect("the note");
    assert_eq!(note["direction"], "note", "internal, not sent to the customer");
    let subject = eventually(20, "the reply in the SMTP server", || async {
        servers.sent().into_iter().find_map(|raw| {
            let m = mail_parser::MessageParser::default().parse(&raw)?;
            let to_ann = m.to()?.first()?.address()? == "ann@example.org";
            let body = m.body_text(0)?.contains("Hi Ann, a technician is on the way.");
            (to_ann && body).then(|| m.subject().unwrap_or_default().to_owned())
        })
    })
    .await;
    assert!(subject.starts_with("Re: Printer on fire [#"), "{subject}");

    // A supervisor watches the console; the quiet case breaches and the alert appears live.
    browser.click("#cf-logout").await;
    browser.find("#cf-login").await;
    log_in(&browser, &app.base, "sue.supervisor@caseflow.test").await;
    browser.click("#cf-nav-supervisor").await;
    browser.wait_text("#cf-alerts", "No open alerts").await;
    clock.set(start + Duration::minutes(61));
    app.app().sla_tick().await.expect("tick");
    let log = browser.wait_text("#cf-alerts", "breach").await;
    assert!(log.contains("first response"), "{log}");
    browser.wait_true("the banner shown", "return !document.getElementById('cf-alert-banner').hidden;").await;
    browser.wait_text("#cf-breaching", "Nobody has answered this yet").await;
    browser.wait_text("#cf-breaching", "overdue").await;
    // A bar for the cases created this hour (the legend's swatches are not in the chart).
    browser
        .wait_true(
            "an hourly bar",
            "return [...document.querySelectorAll('#cf-chart-hourly svg.cf-chart-svg rect title')].some((t) => /: 2 created$/.test(t.textContent));",
        )
        .await;
    let ann_id = app.call(reqwest::Method::GET, "/api/v1/me", Some(&ann_token), None).await.expect(200)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    browser.wait_text(&format!("#cf-agents tr[data-agent='{ann_id}']"), "0 / 5").await;
    browser.screenshot("supervisor").await;
    // The figures follow the alert: the breach is counted for its team.
    browser.wait_text("#cf-breaches-teams", "No team").await;
    browser.script("document.getElementById('cf-charts-title').scrollIntoView(); return true;").await;
    browser.screenshot("supervisor-charts").await;
    // Reassign the breaching case from the console.
    let quiet_case = app.get(&format!("/api/v1/cases/{quiet}")).await.expect(200);
    assert!(quiet_case["assignee_id"].is_null());
    let bob_id = app.call(reqwest::Method::GET, "/api/v1/me", Some(&bob), None).await.expect(200)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    browser.click(&format!("#cf-breaching select.cf-assign option[value='{bob_id}']")).await;
    eventually(10, "the case reassigned", || async {
        let c = app.get(&format!("/api/v1/cases/{quiet}")).await.expect(200);
        (c["assignee_id"] == bob_id.as_str()).then_some(())
    })
    .await;
    browser.click("#cf-alerts li.cf-alert-breach button").await;
    browser
        .wait_true("the alert acknowledged", "return !document.querySelector('#cf-alerts li.cf-alert-breach');")
        .await;
    let alerts = app.get("/api/v1/alerts?since=2026-12-06T00:00:00Z").await.expect(200);
    let breach = alerts["items"].as_array().unwrap().iter().find(|a| a["kind"] == "breach").cloned().unwrap();
    assert_eq!(breach["case_id"], quiet.as_str());
    assert!(breach["acknowledged_by"].is_string(), "{breach}");

    // An admin manages canned replies in the browser.
    browser.click("#cf-logout").await;
    browser.find("#cf-login").await;
    log_in(&browser, &app.base, ADMIN_EMAIL).await;
    browser.click("#cf-nav-admin").await;
    browser.wait_text("#cf-macros", "Technician").await;
    browser.type_into("#cf-macro-name", "Closing").await;
    browser.type_into("#cf-macro-body", "Thanks {{customer.first_name}}, case {{case.number}} is solved.").await;
    browser.click("#cf-macro-save").await;
    browser.wait_text("#cf-macros", "Closing").await;
    browser.type_into("#cf-macro-name", "Broken").await;
    browser.type_into("#cf-macro-body", "Hi {{customer.shoe_size}}").await;
    browser.click("#cf-macro-save").await;
    browser.wait_text("#cf-macro-error", "unknown placeholder {{customer.shoe_size}}").await;
    browser.screenshot("admin-canned-replies").await;
    let names: Vec<String> = app.get("/api/v1/macros").await.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Closing", "Technician"]);
    // Everything else the API configures: a team from its JSON template, a refused change with
    // the server's reason, an API token shown once.
    browser.click("#cf-admin-teams").await;
    browser
        .wait_true("the team template", "return document.getElementById('cf-admin-json').value.includes('Billing');")
        .await;
    browser.click("#cf-admin-save").await;
    browser.wait_text("#cf-admin-list", "Billing").await;
    // An SLA calendar in its form: a zone the server refuses (its reason shown), then a split
    // shift and a yearly holiday; the JSON view shows what the form holds.
    browser.click("#cf-admin-calendars").await;
    browser.wait_text("#cf-admin-list", "Always").await;
    browser
        .script("document.getElementById('cf-cal-name').value = 'Split shift desk'; document.getElementById('cf-cal-zone').value = 'Mars/Olympus'; return true;")
        .await;
    browser.click("#cf-admin-save").await;
    browser.wait_text("#cf-admin-error", "Mars/Olympus").await;
    browser.script("document.getElementById('cf-cal-zone').value = 'Europe/Paris'; document.querySelector('.cf-cal-to').value = '12:30'; return true;").await;
    browser.click("#cf-cal-hours-add").await;
    browser
        .script("const r = document.querySelectorAll('#cf-cal-hours .cf-cal-hours-row')[1]; r.querySelector('.cf-cal-from').value = '13:30'; r.querySelector('.cf-cal-to').value = '18:00'; return true;")
        .await;
    browser.click("#cf-cal-holidays-add").await;
    browser
        .script("document.querySelector('.cf-hol-date').value = '2026-12-25'; document.querySelector('.cf-hol-name').value = 'Christmas'; document.querySelector('.cf-hol-yearly').checked = true; return true;")
        .await;
    browser.screenshot("admin-calendar-form").await;
    browser.click("#cf-admin-save").await;
    browser.wait_text("#cf-admin-list", "Split shift desk").await;
    let calendars = app.get("/api/v1/sla/calendars").await.expect(200);
    let cal = calendars["items"].as_array().unwrap().iter().find(|c| c["name"] == "Split shift desk").cloned().unwrap();
    let week = json!(["mon", "tue", "wed", "thu", "fri"]);
    assert_eq!(
        (&cal["time_zone"], &cal["hours"], &cal["holidays"]),
        (
            &json!("Europe/Paris"),
            &json!([{"days": week, "from": "09:00", "to": "12:30"}, {"days": week, "from": "13:30", "to": "18:00"}]),
            &json!([{"date": "2026-12-25", "name": "Christmas", "yearly": true}])
        ),
        "{cal}"
    );
    edit_admin_row(&browser, "Split shift desk").await;
    // A change made in the form shows in the JSON view.
    browser.script("document.querySelector('.cf-hol-name').value = 'Noël'; return true;").await;
    browser.click("#cf-admin-mode").await;
    browser
        .wait_true("the calendar as JSON", "const j = document.getElementById('cf-admin-json'); return !j.hidden && j.value.includes('13:30') && j.value.includes('Noël') && !j.value.includes('Christmas');")
        .await;
    // An SLA policy in its form: conditions ticked, the new calendar chosen, a business-hours
    // target and an escalation step.
    browser.click("#cf-admin-policies").await;
    browser
        .wait_true("the policy form with the calendars", "return [...document.querySelectorAll('#cf-pol-calendar option')].some((o) => o.value === 'Split shift desk');")
        .await;
    browser
        .script("document.getElementById('cf-pol-name').value = 'Gold chat'; document.querySelector('.cf-pol-tier-gold').checked = true; document.querySelector('.cf-pol-channel-chat').checked = true; document.getElementById('cf-pol-calendar').value = 'Split shift desk'; const t = document.querySelector('#cf-pol-targets .cf-cal-hours-row'); t.querySelector('.cf-pol-minutes').value = '30'; t.querySelector('.cf-pol-business').checked = true; return true;")
        .await;
    browser.click("#cf-pol-ladder-add").await;
    browser.screenshot("admin-policy-form").await;
    browser.click("#cf-admin-save").await;
    browser.wait_text("#cf-admin-list", "Gold chat").await;
    let policies = app.get("/api/v1/sla/policies").await.expect(200);
    let pol = policies["items"].as_array().unwrap().iter().find(|p| p["name"] == "Gold chat").cloned().unwrap();
    // Opened and saved unchanged, the policy stays as it was.
    edit_admin_row(&browser, "Gold chat").await;
    browser
        .wait_true("the policy in the form", "return document.getElementById('cf-pol-name').value === 'Gold chat';")
        .await;
    browser.wait_text("#cf-admin-form-title", "Change Gold chat").await;
    browser.click("#cf-admin-save").await;
    // Saved: the page lists the policies again with an empty form (a refusal would stay).
    browser
        .wait_true("the unchanged save", "return document.getElementById('cf-admin-form-title').textContent === 'New' && document.getElementById('cf-admin-error').textContent === '';")
        .await;
    let all = app.get("/api/v1/sla/policies").await.expect(200);
    let unchanged = all["items"].as_array().unwrap().iter().find(|p| p["name"] == "Gold chat").cloned().unwrap();
    let spec = |p: &Value| {
        let mut p = p.clone();
        for k in ["id", "created_at", "updated_at"] {
            p.as_object_mut().unwrap().remove(k);
        }
        p
    };
    assert_eq!(spec(&unchanged), spec(&pol));
    assert_eq!(
        (
            &pol["conditions"]["tiers"],
            &pol["conditions"]["channels"],
            &pol["calendar"],
            &pol["targets"],
            &pol["ladder"]
        ),
        (
            &json!(["gold"]),
            &json!(["chat"]),
            &json!("Split shift desk"),
            &json!([{"metric": "first_response", "minutes": 30, "business_hours": true}]),
            &json!([{"on": "breach", "after_minutes": 0, "action": "alert_supervisors", "metrics": []}])
        ),
        "{pol}"
    );
    browser.click("#cf-admin-tokens").await;
    browser
        .wait_true("the token template", "return document.getElementById('cf-admin-json').value.includes('CRM sync');")
        .await;
    browser.click("#cf-admin-save").await;
    let shown = browser.wait_text("#cf-new-token", "cfk_").await;
    browser.screenshot("admin-api-tokens").await;
    let token = shown.split_whitespace().find(|w| w.starts_with("cfk_")).unwrap().to_owned();
    let r = app.call(reqwest::Method::GET, "/api/v1/cases", Some(&token), None).await;
    r.expect(200);
    let teams = app.get("/api/v1/teams").await.expect(200);
    let billing = teams["items"].as_array().unwrap().iter().find(|t| t["name"] == "Billing").cloned();
    let billing = billing.unwrap_or_else(|| panic!("{teams}"));
    // A new agent from the agent form: a supervisor of the new team, with the password the
    // page generated (read from the form, then used to log in).
    browser.click("#cf-admin-agents").await;
    browser
        .wait_true("the agent form", "const e = document.getElementById('cf-f-agent-email'); return !!e && !document.getElementById('cf-f-agent-form').hidden;")
        .await;
    let password = browser
        .script(&format!(
            "document.getElementById('cf-f-agent-email').value = 'nina.new@caseflow.test'; document.getElementById('cf-f-agent-name').value = 'Nina New'; document.getElementById('cf-f-agent-role').value = 'supervisor'; document.getElementById('cf-f-agent-team_id').value = '{}'; return document.getElementById('cf-f-agent-password').value;",
            billing["id"].as_str().unwrap()
        ))
        .await;
    let password = password.as_str().unwrap().to_owned();
    assert!(password.len() >= 10, "a generated password: {password:?}");
    assert!(
        browser.script("return document.getElementById('cf-f-agent-active-field').hidden;").await == true,
        "no active box on a new agent"
    );
    browser.click("#cf-admin-save").await;
    browser
        .wait_true("the agent saved, or refused", "return document.getElementById('cf-admin-list').textContent.includes('Nina New') || document.getElementById('cf-admin-error').textContent !== '';")
        .await;
    let refused = browser.script("return document.getElementById('cf-admin-error').textContent;").await;
    assert_eq!(refused, "", "the agent form was refused");
    let nina = app.login("nina.new@caseflow.test", &password).await;
    let me = app.call(reqwest::Method::GET, "/api/v1/me", Some(&nina), None).await.expect(200);
    assert_eq!((&me["role"], &me["team_id"]), (&json!("supervisor"), &billing["id"]), "{me}");
    // A webhook's signing secret rotated from its row; the previous one's end is shown.
    let hook = app
        .post("/api/v1/webhooks", json!({"url": "https://hooks.example.org/caseflow", "events": ["case.created"]}))
        .await
        .expect(201);
    browser.click("#cf-admin-webhooks").await;
    browser.wait_text("#cf-admin-list", hook["secret"].as_str().unwrap()).await;
    browser.script("window.confirm = () => true; return true;").await;
    browser.click(".cf-rotate-secret").await;
    browser
        .wait_true(
            "the rotated secret listed",
            &format!(
                "const t = document.getElementById('cf-admin-list').textContent; return !t.includes('{}') && t.includes('whsec_');",
                hook["secret"].as_str().unwrap()
            ),
        )
        .await;
    let rotated = app.get(&format!("/api/v1/webhooks/{}", id(&hook))).await.expect(200);
    assert_ne!(rotated["secret"], hook["secret"]);
    assert!(rotated["previous_secret_expires_at"].is_string(), "{rotated}");
    browser.wait_text("#cf-admin-list", rotated["secret"].as_str().unwrap()).await;
    browser.screenshot("admin-webhooks").await;
    // Nina's console starts on her team: the breaching case of no team is not in it; all
    // teams brings it back.
    browser.click("#cf-logout").await;
    browser.find("#cf-login").await;
    log_in_with(&browser, &app.base, "nina.new@caseflow.test", &password).await;
    browser.click("#cf-nav-supervisor").await;
    let billing_id = billing["id"].as_str().unwrap();
    browser
        .wait_true("the console on Billing", &format!("const c = document.querySelector('.cf-super'); return !!c && c.dataset.team === '{billing_id}' && document.getElementById('cf-super-team').value === '{billing_id}';"))
        .await;
    let next = browser.text("#cf-breaching").await;
    assert!(!next.contains("Nobody has answered this yet"), "no case of another team: {next}");
    browser.click("#cf-super-team option[value='']").await;
    browser
        .wait_true(
            "the console on every team",
            "const c = document.querySelector('.cf-super'); return !!c && c.dataset.team === '';",
        )
        .await;
    browser.wait_text("#cf-breaching", "Nobody has answered this yet").await;
    assert_eq!(
        browser.script("return document.activeElement.id;").await,
        "cf-super-team",
        "focus stays on the selector"
    );
    browser.quit().await;
    app.stop().await;
}

/// Browser sessions over plain HTTP: the HttpOnly cookie authenticates reads; changes need
/// the CSRF token; the session ends with its agent's deactivation and on logout.
async fn cookie_sessions_need_csrf_for_changes(db: Db) {
    let app = spawn(db).await;
    let (agent_id, _) = app.agent("carl.cookie@caseflow.test", "agent").await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}/api/v1{p}", app.base);
    let bad = http
        .post(url("/auth/session"))
        .json(&json!({"email": "carl.cookie@caseflow.test", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    let r = http
        .post(url("/auth/session"))
        .json(&json!({"email": "carl.cookie@caseflow.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookies: Vec<String> =
        r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let session = cookies.iter().find(|c| c.starts_with("cf_session=")).expect("session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"), "{session}");
    let jar = session.split(';').next().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    assert!(cookies.iter().any(|c| c.starts_with(&format!("cf_csrf={csrf};"))), "{cookies:?}");
    assert_eq!(body["agent"]["id"], agent_id.as_str());
    assert!(body.get("access_token").is_none(), "the session token stays in the cookie");
    let get = |p: &str| http.get(url(p)).header("Cookie", &jar).send();

    // Reads work with the cookie alone.
    let me: Value = get("/me").await.unwrap().json().await.unwrap();
    assert_eq!(me["id"], agent_id.as_str());
    let inbox: Value = get("/inbox?view=mine").await.unwrap().json().await.unwrap();
    assert_eq!(inbox["counts"]["mine"], 0);
    // A change without the token (what a forged cross-site request would be) is refused.
    let presence = url(&format!("/agents/{agent_id}/presence"));
    let put = |token: Option<&str>| {
        let mut req = http.put(&presence).header("Cookie", &jar).json(&json!({"presence": "away"}));
        if let Some(t) = token {
            req = req.header("X-CSRF-Token", t);
        }
        req.send()
    };
    let r = put(None).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "csrf_failed");
    assert_eq!(put(Some(&"0".repeat(64))).await.unwrap().status().as_u16(), 403);
    let r = put(Some(&csrf)).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["presence"], "away");
    // Creating through the idempotency layer needs the token too.
    let r = http
        .post(url("/cases"))
        .header("Cookie", &jar)
        .header("Idempotency-Key", "cookie-1")
        .json(&json!({"subject": "Forged", "body": "x", "customer": {"email": "forged@example.org"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(app.get("/api/v1/cases?q=Forged").await.expect(200)["items"], json!([]));
    // The session token is no bearer token (it would skip the cookie's checks).
    let token = jar.trim_start_matches("cf_session=");
    let r = http.get(url("/me")).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // And a bearer token is no session.
    let bearer = app.login("carl.cookie@caseflow.test", PASSWORD).await;
    let r = http.get(url("/me")).header("Cookie", format!("cf_session={bearer}")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // A live stream opened with the cookie.
    let mut stream = http.get(url("/cases/stream")).header("Cookie", &jar).send().await.unwrap();
    assert_eq!(stream.status().as_u16(), 200);

    // Deactivating the agent ends the session (within the 10 s verification cache).
    app.patch(&format!("/api/v1/agents/{agent_id}"), json!({"active": false})).await.expect(200);
    eventually(15, "the session refused", || async {
        (get("/me").await.unwrap().status().as_u16() == 401).then_some(())
    })
    .await;
    // ... and its open stream ends within the re-check period.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(25), async {
        loop {
            match stream.chunk().await {
                Ok(Some(_)) => continue,
                other => return other.map(|_| ()),
            }
        }
    })
    .await;
    assert!(matches!(ended, Ok(Ok(()))), "the stream of a deactivated agent ended: {ended:?}");

    // Logging out ends the session for good and clears the cookies (a second session of the
    // reactivated agent, logged out, is refused afterwards even with a copy of its cookie).
    app.patch(&format!("/api/v1/agents/{agent_id}"), json!({"active": true})).await.expect(200);
    let again = http
        .post(url("/auth/session"))
        .json(&json!({"email": "carl.cookie@caseflow.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let jar = again
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("cf_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(http.get(url("/me")).header("Cookie", &jar).send().await.unwrap().status().as_u16(), 200);
    let r = http.delete(url("/auth/session")).header("Cookie", &jar).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let cleared: Vec<String> =
        r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(cleared.iter().any(|c| c.starts_with("cf_session=;") && c.contains("Max-Age=0")), "{cleared:?}");
    let r = http.get(url("/me")).header("Cookie", &jar).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401, "a copy of the logged-out cookie is refused");
    app.stop().await;
}

/// The live case stream: a change on the case shows up as an event; resuming with
/// `Last-Event-ID` sends only what came after.
async fn case_changes_stream_live_and_resume(db: Db) {
    let app = spawn(db).await;
    let open = |last: Option<String>| {
        let mut req = app.client.get(format!("{}/api/v1/cases/stream", app.base)).bearer_auth(&app.admin);
        if let Some(l) = last {
            req = req.header("Last-Event-ID", l);
        }
        req.send()
    };
    let mut stream = open(None).await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let case = id(&app.new_case("stream@example.org", "Streamed").await);
    let mut buf = String::new();
    let events = read_events(&mut stream, &mut buf, |e| e["case_id"] == case.as_str()).await;
    let (first_id, first) = events.last().cloned().unwrap();
    assert_eq!(first["case_id"], case.as_str());
    drop(stream);
    app.patch(&format!("/api/v1/cases/{case}"), json!({"priority": "high"})).await.expect(200);
    let mut stream = open(Some(first_id.clone())).await.unwrap();
    let mut buf = String::new();
    // What happened while disconnected arrives on the resumed stream (at least once: events
    // within the overlap window before the resume point may come again, with their ids).
    let events = read_events(&mut stream, &mut buf, |e| e["kind"] == "priority_changed").await;
    let change = &events.last().unwrap().1;
    assert_eq!(change["case_id"], case.as_str());
    assert!(events.iter().filter(|(i, _)| *i == first_id).count() == 0, "the resume point itself is not sent");
    app.stop().await;
}

/// Reads `case` events until one matches `done` (or 15 s pass); returns every one read.
async fn read_events(
    stream: &mut reqwest::Response,
    buf: &mut String,
    done: impl Fn(&Value) -> bool,
) -> Vec<(String, Value)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut out = Vec::new();
    loop {
        while let Some(block) = next_sse_block(buf) {
            if let Some((id, v)) = block {
                let last = done(&v);
                out.push((id, v));
                if last {
                    return out;
                }
            }
        }
        next_sse_chunk(stream, buf, deadline, &out).await;
    }
}

/// The inbox API: views, filters, counts, SLA-due order and keyset pages.
async fn inbox_views_filters_and_pages(db: Db) {
    let clock = Arc::new(FixedClock::new(monday_nine()));
    let app = spawn_with_clock(settings(db, &[("CASEFLOW__AUTH__JWT_TTL_SECS", "86400")]), clock.clone()).await;
    let cal = json!({"name": "Always", "time_zone": "UTC",
        "hours": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": "00:00", "to": "24:00"}]});
    app.post("/api/v1/sla/calendars", cal).await.expect(201);
    let urgent = json!({"name": "Urgent", "calendar": "Always", "conditions": {"priorities": ["urgent"]},
        "targets": [{"metric": "first_response", "minutes": 30}]});
    app.post("/api/v1/sla/policies", urgent).await.expect(201);
    let normal =
        json!({"name": "Normal", "calendar": "Always", "targets": [{"metric": "first_response", "minutes": 240}]});
    app.post("/api/v1/sla/policies", normal).await.expect(201);
    let (agent_id, agent) = app.agent("ina.inbox@caseflow.test", "agent").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = id(&app.new_case(&format!("c{i}@example.org"), &format!("Case {i}")).await);
        ids.push(c);
    }
    clock.set(monday_nine() + Duration::minutes(1));
    let urgent_case = id(&app
        .post(
            "/api/v1/cases",
            json!({"subject": "Down!", "body": "x", "priority": "urgent", "customer": {"email": "u@example.org"}}),
        )
        .await
        .expect(201));
    app.patch(&format!("/api/v1/cases/{}", ids[1]), json!({"assignee_id": agent_id})).await.expect(200);
    app.patch(&format!("/api/v1/cases/{}", ids[2]), json!({"status": "pending"})).await.expect(200);
    // Every case's deadline is computed by the scheduler.
    eventually(10, "deadlines", || async {
        let p = app.get("/api/v1/inbox?view=all&limit=100").await.expect(200);
        // The running clocks have deadlines; the pending case's paused clock has none any more.
        let items = p["items"].as_array().unwrap();
        let running = items.iter().filter(|i| i["case"]["status"] != "pending").all(|i| i["sla_due_at"].is_string());
        let paused = items.iter().filter(|i| i["case"]["status"] == "pending").all(|i| i["sla_due_at"].is_null());
        (running && paused).then_some(())
    })
    .await;
    let page = app.get("/api/v1/inbox?view=open&limit=100").await.expect(200);
    let order: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|i| i["case"]["id"].as_str().unwrap()).collect();
    assert_eq!(order[0], urgent_case, "the urgent case is due first (09:31)");
    assert_eq!(order.len(), 5, "new and open, not pending");
    // The admin is an agent without a team: "team" is the unassigned, unsolved cases of no team.
    assert_eq!(page["counts"], json!({"mine": 0, "team": 5, "open": 5, "pending": 1, "breaching": 1}));
    // Keyset pages of two cover the view exactly once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/inbox?view=open&limit=2&cursor={c}"),
            None => "/api/v1/inbox?view=open&limit=2".to_owned(),
        };
        let p = app.get(&path).await.expect(200);
        assert_eq!(p.get("counts").is_some(), cursor.is_none(), "counts on the first page only");
        seen.extend(p["items"].as_array().unwrap().iter().map(|i| i["case"]["id"].as_str().unwrap().to_owned()));
        match p["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, order);
    // Every case, two at a time: the pending one (its clock paused: no running deadline)
    // comes last, from the second phase of the keyset.
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    let mut cursors = Vec::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/inbox?view=all&limit=2&cursor={c}"),
            None => "/api/v1/inbox?view=all&limit=2".to_owned(),
        };
        let p = app.get(&path).await.expect(200);
        all.extend(p["items"].as_array().unwrap().iter().map(|i| i["case"]["id"].as_str().unwrap().to_owned()));
        match p["next_cursor"].as_str() {
            Some(c) => {
                cursors.push(c.to_owned());
                cursor = Some(c.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(all.len(), 6, "{all:?}");
    assert_eq!(all.iter().collect::<std::collections::HashSet<_>>().len(), 6, "no case twice: {all:?}");
    assert_eq!(all.last().unwrap(), &ids[2], "the case without a running deadline comes last");
    assert_eq!(&all[..5], &order[..], "then the others in deadline order");
    // A cursor holds a position, not a page size: it works with another limit.
    let p = app.get(&format!("/api/v1/inbox?view=all&limit=1&cursor={}", cursors[1])).await.expect(200);
    assert_eq!(p["items"][0]["case"]["id"], all[4].as_str());
    // An agent's views and filters.
    let mine = app.call(reqwest::Method::GET, "/api/v1/inbox", Some(&agent), None).await.expect(200);
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(mine["items"][0]["case"]["id"], ids[1].as_str());
    assert_eq!(mine["counts"]["mine"], 1);
    assert_eq!(mine["counts"]["team"], 5, "unassigned and unsolved cases of no team (the agent has none)");
    let urgent = app.get("/api/v1/inbox?view=all&priority=urgent").await.expect(200);
    assert_eq!(urgent["items"].as_array().unwrap().len(), 1);
    let found = app.get("/api/v1/inbox?view=all&q=case%203").await.expect(200);
    assert_eq!(found["items"][0]["case"]["id"], ids[3].as_str());
    app.get("/api/v1/inbox?view=nope").await.expect_error(422, "validation_failed");
    // An integrator has no "mine" or "team"; its default view is every case.
    let token = app.post("/api/v1/api-tokens", json!({"name": "Inbox", "scopes": ["read"]})).await.expect(201);
    let token = token["token"].as_str().unwrap();
    let r = app.call(reqwest::Method::GET, "/api/v1/inbox?view=mine", Some(token), None).await;
    r.expect_error(422, "validation_failed");
    let all = app.call(reqwest::Method::GET, "/api/v1/inbox", Some(token), None).await.expect(200);
    assert_eq!(all["items"].as_array().unwrap().len(), 6);
    assert_eq!(all["counts"]["mine"], Value::Null);
    app.get("/api/v1/inbox?cursor=garbage").await.expect_error(422, "validation_failed");
    // Past the urgent case's deadline it is breaching.
    clock.set(monday_nine() + Duration::minutes(40));
    app.app().sla_tick().await.expect("tick");
    // The scheduler's own worker may be the one that records the breach (this tick then finds
    // the case taken): wait for it rather than assume which.
    let b = eventually(10, "the breach recorded", || async {
        let b = app.get("/api/v1/inbox?view=breaching").await.expect(200);
        (b["items"][0]["sla_breached"] == true).then_some(b)
    })
    .await;
    assert_eq!(b["items"][0]["case"]["id"], urgent_case.as_str());
    app.stop().await;
}

crate::both_backends!(db: cookie_sessions_need_csrf_for_changes, case_changes_stream_live_and_resume, inbox_views_filters_and_pages);

/// Two PostgreSQL nodes: a change on one reaches a case stream on the other at once (the
/// poll is set to a minute, so only the NOTIFY can bring it), and once both are idle no
/// notifications go back and forth (a node does not announce again what it was told).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_changes_cross_nodes_once_and_idle_nodes_stay_quiet() {
    let a = spawn(Db::Postgres).await;
    let mut s = a.settings.clone();
    s.sla.stream_poll_ms = 60_000;
    let b = spawn_node(s).await;
    let mut stream =
        b.client.get(format!("{}/api/v1/cases/stream", b.base)).bearer_auth(&b.admin).send().await.unwrap();
    let mut buf = String::new();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let case = id(&a.new_case("node@example.org", "Across nodes").await);
    let events = read_events(&mut stream, &mut buf, |e| e["case_id"] == case.as_str()).await;
    assert_eq!(events.last().unwrap().1["kind"], "case_created");
    // Quiet now: count the wake-ups node B's streams get over two seconds.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut ticks = b.app().subscribe_changes();
    let quiet = tokio::time::timeout(std::time::Duration::from_secs(2), ticks.recv()).await;
    assert!(quiet.is_err(), "an idle node was woken: {quiet:?}");
    drop(stream);
    b.stop().await;
    a.stop().await;
}

/// Collision warnings and canned replies through the API.
async fn viewers_and_canned_replies(db: Db) {
    let app = spawn(db).await;
    let (ann_id, ann) = app.agent("ann.view@caseflow.test", "agent").await;
    let (bob_id, bob) = app.agent("bob.view@caseflow.test", "agent").await;
    let case = app
        .post("/api/v1/cases", json!({"subject": "Two cooks", "body": "x", "customer": {"email": "ann@example.org", "name": "Ann Example"}}))
        .await
        .expect(201);
    let (case_id, number) = (id(&case), case["number"].as_i64().unwrap());
    let path = format!("/api/v1/cases/{case_id}/viewers/me");
    let put = |who: &String, composing: bool| {
        let who = who.clone();
        let (app, path) = (&app, path.clone());
        async move { app.call(reqwest::Method::PUT, &path, Some(&who), Some(json!({"composing": composing}))).await }
    };
    assert_eq!(put(&ann, false).await.expect(200)["viewers"], json!([]));
    let v = put(&bob, true).await.expect(200);
    assert_eq!(v["viewers"].as_array().unwrap().len(), 1);
    assert_eq!(v["viewers"][0]["agent_id"], ann_id.as_str());
    let v = put(&ann, false).await.expect(200);
    assert_eq!(
        (v["viewers"][0]["agent_id"].as_str(), v["viewers"][0]["composing"].as_bool()),
        (Some(bob_id.as_str()), Some(true))
    );
    app.call(reqwest::Method::DELETE, &path, Some(&bob), None).await.expect(204);
    assert_eq!(put(&ann, false).await.expect(200)["viewers"], json!([]));
    let token = app.post("/api/v1/api-tokens", json!({"name": "Viewer", "scopes": ["read"]})).await.expect(201);
    let token = token["token"].as_str().unwrap();
    app.call(reqwest::Method::PUT, &path, Some(token), Some(json!({}))).await.expect_error(403, "forbidden");
    app.call(reqwest::Method::PUT, "/api/v1/cases/nope/viewers/me", Some(&ann), Some(json!({})))
        .await
        .expect_error(404, "not_found");

    // Canned replies: admins manage them; placeholders are checked and filled per case.
    let body = json!({"name": "Thanks", "body": "Hi {{customer.first_name}}, case #{{ case.number }} is with {{agent.first_name}}."});
    app.call(reqwest::Method::POST, "/api/v1/macros", Some(&ann), Some(body.clone()))
        .await
        .expect_error(403, "forbidden");
    let m = app.post("/api/v1/macros", body.clone()).await.expect(201);
    app.post("/api/v1/macros", body).await.expect_error(409, "already_exists");
    let bad = app.post("/api/v1/macros", json!({"name": "Bad", "body": "{{customer.shoe_size}}"})).await;
    let e = bad.expect_error(422, "validation_failed");
    assert!(e["message"].as_str().unwrap().contains("{{customer.shoe_size}}"), "{e}");
    let render = format!("/api/v1/cases/{case_id}/macros/{}/render", id(&m));
    let r = app.call(reqwest::Method::POST, &render, Some(&ann), None).await.expect(200);
    assert_eq!(r["body"], format!("Hi Ann, case #{number} is with Test."));
    let path = format!("/api/v1/macros/{}", id(&m));
    let changed = app
        .put(&path, json!({"name": "Thanks", "body": "Thank you, {{customer.name}}.", "version": 1}))
        .await
        .expect(200);
    assert_eq!(changed["version"], 2);
    app.put(&path, json!({"name": "Thanks", "body": "Stale", "version": 1}))
        .await
        .expect_error(409, "version_conflict");
    let r = app.call(reqwest::Method::POST, &render, Some(&ann), None).await.expect(200);
    assert_eq!(r["body"], "Thank you, Ann Example.");
    app.delete(&path).await.expect(204);
    app.get(&path).await.expect_error(404, "not_found");
    app.stop().await;
}

crate::both_backends!(db: viewers_and_canned_replies);

/// The supervisor console's figures: load, queues per team, cases in and out per hour, first
/// responses and breaches per day, per channel and team.
async fn supervisor_overview_figures(db: Db) {
    let clock = Arc::new(FixedClock::new(monday_nine() + Duration::minutes(30)));
    let app = spawn_with_clock(settings(db, &[("CASEFLOW__AUTH__JWT_TTL_SECS", "86400")]), clock.clone()).await;
    let policy =
        json!({"name": "Hour", "targets": [{"metric": "first_response", "minutes": 60, "business_hours": false}]});
    app.post("/api/v1/sla/policies", policy).await.expect(201);
    let billing = id(&app.post("/api/v1/teams", json!({"name": "Billing"})).await.expect(201));
    let (agent_id, agent) = app.agent("olga.overview@caseflow.test", "agent").await;
    let a = id(&app.new_case("a@example.org", "Assigned, unanswered").await);
    let b = id(&app
        .post("/api/v1/cases", json!({"subject": "Billing, waiting", "body": "x", "team_id": billing, "customer": {"email": "b@example.org"}}))
        .await
        .expect(201));
    let c = id(&app.new_case("c@example.org", "Answered and solved").await);
    let german = id(&app.post("/api/v1/skills", json!({"name": "german"})).await.expect(201));
    app.put(&format!("/api/v1/cases/{b}/skills"), json!({"skills": [{"skill_id": german, "required": true}]}))
        .await
        .expect(200);
    app.patch(&format!("/api/v1/cases/{a}"), json!({"assignee_id": agent_id})).await.expect(200);
    clock.set(monday_nine() + Duration::minutes(40));
    app.post(&format!("/api/v1/cases/{c}/messages"), json!({"kind": "reply", "body": "Done.", "status": "solved"}))
        .await
        .expect(201);
    clock.set(monday_nine() + Duration::minutes(91));
    eventually(10, "both breaches recorded", || async {
        app.app().sla_tick().await.expect("tick");
        let o = app.get("/api/v1/stats/overview?days=3").await.expect(200);
        (o["daily"][2]["breaches"] == 2).then_some(())
    })
    .await;
    let o = app.get("/api/v1/stats/overview?days=3").await.expect(200);
    let olga = o["agents"].as_array().unwrap().iter().find(|x| x["agent_id"] == agent_id.as_str()).cloned().unwrap();
    assert_eq!((olga["load"].as_i64(), olga["max_load"].as_i64()), (Some(1), Some(5)));
    assert_eq!(o["waiting_per_team"], json!([{"id": billing, "name": "Billing", "count": 1}]), "{o}");
    let hours = o["hourly"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    let nine = hours.iter().find(|h| h["start"] == "2026-12-07T09:00:00Z").expect("the 09:00 hour");
    assert_eq!((nine["created"].as_i64(), nine["solved"].as_i64()), (Some(3), Some(1)));
    assert_eq!(hours.last().unwrap()["start"], "2026-12-07T10:00:00Z");
    let today = &o["daily"][2];
    assert_eq!(today["day"], "2026-12-07");
    assert_eq!((today["answered"].as_i64(), today["first_response_median_mins"].as_f64()), (Some(1), Some(10.0)));
    assert_eq!(today["breaches_by_channel"], json!({"api": 2}));
    let per_team: Vec<(String, i64)> = o["breaches_per_team"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(per_team, [("Billing".to_owned(), 1), ("No team".to_owned(), 1)]);
    assert_eq!(o["daily"][0]["breaches"], 0);

    // One team's figures: Billing has case b (created at 09:00, waiting, breached) and no
    // agent; "none" has the other two cases and every agent (none has a team).
    let only = app.get(&format!("/api/v1/stats/overview?days=3&team={billing}")).await.expect(200);
    assert_eq!(only["agents"], json!([]), "{only}");
    assert_eq!(only["waiting_per_team"], json!([{"id": billing, "name": "Billing", "count": 1}]));
    let nine =
        only["hourly"].as_array().unwrap().iter().find(|h| h["start"] == "2026-12-07T09:00:00Z").cloned().unwrap();
    assert_eq!((nine["created"].as_i64(), nine["solved"].as_i64()), (Some(1), Some(0)));
    assert_eq!((only["daily"][2]["breaches"].as_i64(), only["daily"][2]["answered"].as_i64()), (Some(1), Some(0)));
    assert_eq!(only["breaches_per_team"], json!([{"id": billing, "name": "Billing", "count": 1}]));
    assert_eq!(only["waiting_per_skill"], json!([{"id": german, "name": "german", "count": 1}]));
    let none = app.get("/api/v1/stats/overview?days=3&team=none").await.expect(200);
    assert!(none["agents"].as_array().unwrap().iter().any(|x| x["agent_id"] == agent_id.as_str()), "{none}");
    assert_eq!(none["waiting_per_team"], json!([]), "a is assigned, c solved: {none}");
    assert_eq!(none["waiting_per_skill"], json!([]), "the case needing german is Billing's: {none}");
    assert_eq!(o["waiting_per_skill"], json!([{"id": german, "name": "german", "count": 1}]));
    let nine =
        none["hourly"].as_array().unwrap().iter().find(|h| h["start"] == "2026-12-07T09:00:00Z").cloned().unwrap();
    assert_eq!((nine["created"].as_i64(), nine["solved"].as_i64()), (Some(2), Some(1)));
    assert_eq!((none["daily"][2]["breaches"].as_i64(), none["daily"][2]["answered"].as_i64()), (Some(1), Some(1)));
    app.get("/api/v1/stats/overview?team=nope").await.expect_error(422, "validation_failed");
    // The inbox takes the same team filter.
    let all = app.get("/api/v1/inbox?view=all").await.expect(200);
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    let billing_cases = app.get(&format!("/api/v1/inbox?view=all&team={billing}")).await.expect(200);
    let ids: Vec<&str> =
        billing_cases["items"].as_array().unwrap().iter().map(|i| i["case"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [b.as_str()]);
    let no_team = app.get("/api/v1/inbox?view=all&team=none").await.expect(200);
    assert_eq!(no_team["items"].as_array().unwrap().len(), 2);
    app.get("/api/v1/inbox?team=nope").await.expect_error(422, "validation_failed");
    app.call(reqwest::Method::GET, "/api/v1/stats/overview", Some(&agent), None).await.expect_error(403, "forbidden");
    app.get("/api/v1/stats/overview?days=0").await.expect_error(422, "validation_failed");
    app.stop().await;
}

crate::both_backends!(db: supervisor_overview_figures);

/// Live chat answered in the case view: the visitor's lines and typing appear at once (the
/// page's chat socket, authenticated by the session cookie), the agent's typing and reply
/// reach the visitor's socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_is_answered_in_the_case_view() {
    use crate::chat::Ws;
    let app = spawn(Db::Sqlite).await;
    app.agent("cleo.chat@caseflow.test", "agent").await;
    let mut visitor = Ws::visitor(&app).await;
    visitor.send(json!({"type": "start", "name": "Vic Visitor"})).await;
    visitor.recv_type("session").await;
    visitor.send(json!({"type": "message", "client_id": "v-1", "body": "Hello, anyone there?"})).await;
    let ack = visitor.recv_type("ack").await;
    let case_id = ack["case_id"].as_str().unwrap().to_owned();

    let browser = Browser::start().await;
    log_in(&browser, &app.base, "cleo.chat@caseflow.test").await;
    browser.goto(&format!("{}/app#/case/{case_id}", app.base)).await;
    browser.wait_text("#cf-timeline", "Hello, anyone there?").await;
    // The page's socket is open: the visitor's typing and next line show without a reload.
    browser
        .wait_true(
            "the chat socket open",
            "return document.getElementById('cf-chat-typing').dataset.socket === 'open';",
        )
        .await;
    // The server subscribes the socket just after the handshake.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    browser.script("window.__marker = 'same page'; return true;").await;
    visitor.send(json!({"type": "typing", "typing": true})).await;
    browser.wait_text("#cf-chat-typing", "Vic Visitor is typing").await;
    visitor.send(json!({"type": "message", "client_id": "v-2", "body": "My order never came."})).await;
    browser.wait_text("#cf-timeline", "My order never came.").await;
    assert_eq!(browser.script("return window.__marker;").await, "same page");
    // The agent types (the visitor sees it) and answers in place.
    browser.type_into("#cf-compose-body", "Let me look it up.").await;
    let typing = visitor.recv_type("typing").await;
    assert_eq!(typing["typing"], true, "{typing}");
    browser.screenshot("chat-in-case").await;
    browser.click("#cf-send").await;
    let line = loop {
        let m = visitor.recv_type("message").await;
        if m["author"] == "agent" {
            break m;
        }
    };
    assert_eq!(line["body"], "Let me look it up.");
    browser.wait_text("#cf-timeline", "Let me look it up.").await;
    visitor.close().await;
    browser.quit().await;
    app.stop().await;
}

/// Offer mode: the case routing offers an agent shows in their inbox, to accept in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_is_accepted_from_the_inbox() {
    let app = spawn_with(Db::Sqlite, &[("CASEFLOW__ROUTING__OFFER_TIMEOUT_SECS", "120")]).await;
    let (agent_id, _) = app.agent("otto.offer@caseflow.test", "agent").await;
    app.put(
        &format!("/api/v1/agents/{agent_id}/capacities"),
        json!({"capacities": [{"channel": "api", "capacity": 2}]}),
    )
    .await
    .expect(200);
    app.put(&format!("/api/v1/agents/{agent_id}/presence"), json!({"presence": "online"})).await.expect(200);
    let browser = Browser::start().await;
    log_in(&browser, &app.base, "otto.offer@caseflow.test").await;
    let case = id(&app.new_case("offer@example.org", "Offered while you watch").await);
    // The offer arrives with the case's change on the live stream.
    browser.wait_text("#cf-offers", "Offered while you watch").await;
    browser.click(&format!("#cf-offers li[data-offer='{case}'] button.cf-accept")).await;
    browser.wait_text("#cf-case-title", "Offered while you watch").await;
    let c = app.get(&format!("/api/v1/cases/{case}")).await.expect(200);
    assert_eq!(c["assignee_id"], agent_id.as_str());
    browser.quit().await;
    app.stop().await;
}
