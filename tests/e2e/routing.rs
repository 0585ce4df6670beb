//! Routing through the running service: cases created over the API go to the right agents by
//! skill and capacity, presence changes re-route, manual changes are audited, and two server
//! processes on one PostgreSQL database never double-assign.

use crate::both_backends;
use crate::helpers::*;
use serde_json::{json, Value};

async fn skill(app: &TestApp, name: &str) -> String {
    id(&app.post("/api/v1/skills", json!({"name": name})).await.expect(201))
}

/// An online agent with `skills` and `capacity` on the API channel.
async fn online_agent(app: &TestApp, email: &str, skills: &[(&str, u8)], capacity: u32) -> String {
    online_agent_with_token(app, email, skills, capacity).await.0
}

/// Like [`online_agent`], with the agent's session token.
async fn online_agent_with_token(app: &TestApp, email: &str, skills: &[(&str, u8)], capacity: u32) -> (String, String) {
    let (agent, token) = app.agent(email, "agent").await;
    let skills: Vec<Value> = skills.iter().map(|(s, l)| json!({"skill_id": s, "level": l})).collect();
    app.put(&format!("/api/v1/agents/{agent}/skills"), json!({ "skills": skills })).await.expect(200);
    app.put(
        &format!("/api/v1/agents/{agent}/capacities"),
        json!({"capacities": [{"channel": "api", "capacity": capacity}]}),
    )
    .await
    .expect(200);
    app.put(&format!("/api/v1/agents/{agent}/presence"), json!({"presence": "online"})).await.expect(200);
    (agent, token)
}

async fn case_needing(app: &TestApp, customer: &str, skill: &str) -> String {
    let body = json!({
        "subject": "Help", "body": "Please help.", "customer": {"email": customer},
        "skills": [{"skill_id": skill, "min_level": 2}],
    });
    id(&app.post("/api/v1/cases", body).await.expect(201))
}

async fn assignee(app: &TestApp, case: &str) -> Option<String> {
    app.get(&format!("/api/v1/cases/{case}")).await.expect(200)["assignee_id"].as_str().map(str::to_owned)
}

async fn assigned_to(app: &TestApp, case: &str) -> String {
    eventually(15, "the case to be assigned", || async { assignee(app, case).await }).await
}

async fn routing(app: &TestApp, case: &str) -> Value {
    app.get(&format!("/api/v1/cases/{case}/routing")).await.expect(200)
}

async fn cases_go_to_agents_with_the_skill_and_room_and_the_decision_is_explained(app: &TestApp) {
    let billing = skill(app, "billing").await;
    let technical = skill(app, "technical").await;
    let ann = online_agent(app, "ann@caseflow.test", &[(&billing, 3)], 1).await;
    let ben = online_agent(app, "ben@caseflow.test", &[(&technical, 4)], 5).await;
    // Has the skill, but too low a level.
    let cid = online_agent(app, "cid@caseflow.test", &[(&billing, 1)], 5).await;

    let first = case_needing(app, "one@example.org", &billing).await;
    assert_eq!(assigned_to(app, &first).await, ann);
    let tech = case_needing(app, "two@example.org", &technical).await;
    assert_eq!(assigned_to(app, &tech).await, ben);

    let r = routing(app, &first).await;
    assert_eq!(r["state"], "assigned");
    assert_eq!(r["skills"][0]["skill_id"], billing.as_str());
    assert_eq!(r["skills"][0]["min_level"], 2);
    let d = &r["decisions"][0];
    assert_eq!((d["outcome"].as_str(), d["agent_id"].as_str()), (Some("assigned"), Some(ann.as_str())));
    let why = &d["explanation"];
    assert_eq!(why["decided_by"], "router");
    assert_eq!(why["strategy"], "longest_idle");
    assert_eq!(why["ranking"][0]["agent_id"], ann.as_str());
    // The admin (offline) and Cid (level 1) and Ben (no billing) were excluded.
    assert!(why["excluded_skills"].as_u64().unwrap() >= 2, "{why}");
    assert!(why["excluded_offline"].as_u64().unwrap() >= 1, "{why}");
    let events = app.get(&format!("/api/v1/cases/{first}/events")).await.expect(200);
    let assigned: Vec<&Value> =
        events["items"].as_array().unwrap().iter().filter(|e| e["kind"] == "assignee_changed").collect();
    assert_eq!(assigned.len(), 1, "{events}");
    assert_eq!(
        (assigned[0]["actor_kind"].as_str(), assigned[0]["data"]["by"].as_str()),
        (Some("system"), Some("routing"))
    );

    // Ann is full (capacity 1) and Cid's level is too low: the next billing case waits, and
    // says why.
    let second = case_needing(app, "three@example.org", &billing).await;
    let waiting = eventually(15, "a waiting decision", || async {
        let r = routing(app, &second).await;
        (r["decisions"].as_array().is_some_and(|d| !d.is_empty())).then_some(r)
    })
    .await;
    assert_eq!(waiting["state"], "waiting");
    let d = &waiting["decisions"][0];
    assert_eq!(d["outcome"], "waiting");
    assert_eq!(d["explanation"]["eligible"], 0);
    assert!(d["explanation"]["excluded_capacity"].as_u64().unwrap() >= 1, "{d}");
    assert_eq!(assignee(app, &second).await, None);

    // Ann solves her case: her room goes to the waiting case at once.
    app.patch(&format!("/api/v1/cases/{first}"), json!({"status": "solved"})).await.expect(200);
    assert_eq!(assigned_to(app, &second).await, ann);

    // A case nobody could ever take (no agent has the skill) waits with the reason.
    let rare = skill(app, "klingon").await;
    let nobody = case_needing(app, "four@example.org", &rare).await;
    let r = eventually(15, "a waiting decision", || async {
        let r = routing(app, &nobody).await;
        (r["decisions"].as_array().is_some_and(|d| !d.is_empty())).then_some(r)
    })
    .await;
    assert_eq!(r["decisions"][0]["explanation"]["eligible"], 0);
    assert_eq!(assignee(app, &nobody).await, None);
    // Giving someone the skill routes it.
    app.put(&format!("/api/v1/agents/{cid}/skills"), json!({"skills": [{"skill_id": rare, "level": 5}]}))
        .await
        .expect(200);
    assert_eq!(assigned_to(app, &nobody).await, cid);
}

async fn going_away_gives_unstarted_cases_back_but_pinned_cases_stay(app: &TestApp) {
    let billing = skill(app, "billing").await;
    let ann = online_agent(app, "ann@caseflow.test", &[(&billing, 3)], 2).await;
    let one = case_needing(app, "one@example.org", &billing).await;
    let two = case_needing(app, "two@example.org", &billing).await;
    assert_eq!(assigned_to(app, &one).await, ann);
    assert_eq!(assigned_to(app, &two).await, ann);
    // A supervisor pins case two to Ann (audited).
    app.patch(&format!("/api/v1/cases/{two}"), json!({"pinned": true})).await.expect(200);
    // Bob has the skill but is offline; Ann goes away.
    let bob = online_agent(app, "bob@caseflow.test", &[(&billing, 5)], 5).await;
    app.put(&format!("/api/v1/agents/{bob}/presence"), json!({"presence": "offline"})).await.expect(200);
    let away = app.put(&format!("/api/v1/agents/{ann}/presence"), json!({"presence": "away"})).await.expect(200);
    assert_eq!(away["presence"], "away");
    // Case one is back in the queue; nobody online can take it.
    assert_eq!(assignee(app, &one).await, None);
    assert_eq!(assignee(app, &two).await.as_deref(), Some(ann.as_str()), "the pinned case stays");
    let r = routing(app, &one).await;
    assert_eq!(r["state"], "waiting");
    assert!(r["decisions"].as_array().unwrap().iter().any(|d| d["outcome"] == "rerouted"), "{r}");
    // Bob comes online and gets it.
    app.put(&format!("/api/v1/agents/{bob}/presence"), json!({"presence": "online"})).await.expect(200);
    assert_eq!(assigned_to(app, &one).await, bob);
    assert_eq!(assignee(app, &two).await.as_deref(), Some(ann.as_str()));

    // Deactivating Bob gives back even his unstarted pinned cases: nobody else can work them.
    app.patch(&format!("/api/v1/cases/{one}"), json!({"pinned": true})).await.expect(200);
    let off = app.patch(&format!("/api/v1/agents/{bob}"), json!({"active": false})).await.expect(200);
    assert_eq!((off["active"].as_bool(), off["presence"].as_str()), (Some(false), Some("offline")));
    let back = app.get(&format!("/api/v1/cases/{one}")).await.expect(200);
    assert_eq!((back["assignee_id"].is_null(), back["pinned"].as_bool()), (true, Some(false)), "{back}");
    let bob_log = app.get(&format!("/api/v1/agents/{bob}/events")).await.expect(200);
    let updated = bob_log["items"].as_array().unwrap().iter().find(|e| e["kind"] == "agent_updated").unwrap();
    assert_eq!(updated["data"]["cases_rerouted"], 1, "{updated}");

    // The agent's audit log has the presence change with the count, and the capacities.
    let log = app.get(&format!("/api/v1/agents/{ann}/events")).await.expect(200);
    let kinds: Vec<&str> = log["items"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"skills_set") && kinds.contains(&"capacities_set"), "{kinds:?}");
    let away_event = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "presence_changed" && e["data"]["to"] == "away")
        .expect("presence event");
    assert_eq!(away_event["data"]["cases_rerouted"], 1);
    assert_eq!(away_event["actor_id"], app.get("/api/v1/me").await.expect(200)["id"]);
    let case_log = app.get(&format!("/api/v1/cases/{two}/events")).await.expect(200);
    assert!(case_log["items"].as_array().unwrap().iter().any(|e| e["kind"] == "pinned"), "{case_log}");
    // A pin needs an assignee (nobody can take this case).
    let rare = skill(app, "klingon").await;
    let lone = case_needing(app, "five@example.org", &rare).await;
    app.patch(&format!("/api/v1/cases/{lone}"), json!({"pinned": true})).await.expect_error(422, "validation_failed");
    // Unassigning a pinned case unpins it, and routing takes it again.
    let unassigned = app.patch(&format!("/api/v1/cases/{two}"), json!({"assignee_id": null})).await.expect(200);
    assert_eq!(unassigned["pinned"], false);
    let case_log = app.get(&format!("/api/v1/cases/{two}/events")).await.expect(200);
    assert!(case_log["items"].as_array().unwrap().iter().any(|e| e["kind"] == "unpinned"), "{case_log}");
    app.put(&format!("/api/v1/agents/{ann}/presence"), json!({"presence": "online"})).await.expect(200);
    assert_eq!(assigned_to(app, &two).await, ann);
}

async fn manual_assignment_overrides_and_an_agent_cannot_pin(app: &TestApp) {
    let billing = skill(app, "billing").await;
    let ann = online_agent(app, "ann@caseflow.test", &[(&billing, 3)], 1).await;
    let one = case_needing(app, "one@example.org", &billing).await;
    assert_eq!(assigned_to(app, &one).await, ann);
    // A supervisor may assign beyond capacity and skills (an override, audited).
    let (bob, bob_token) = app.agent("bob@caseflow.test", "agent").await;
    let two = case_needing(app, "two@example.org", &billing).await;
    app.patch(&format!("/api/v1/cases/{two}"), json!({"assignee_id": bob})).await.expect(200);
    assert_eq!(assignee(app, &two).await.as_deref(), Some(bob.as_str()));
    let r = app
        .call(reqwest::Method::PATCH, &format!("/api/v1/cases/{two}"), Some(&bob_token), Some(json!({"pinned": true})))
        .await;
    r.expect_error(403, "forbidden");
    // Capacity input is checked.
    app.put(&format!("/api/v1/agents/{ann}/capacities"), json!({"capacities": [{"channel": "api", "capacity": -1}]}))
        .await
        .expect_error(422, "validation_failed");
    app.put(
        &format!("/api/v1/agents/{ann}/capacities"),
        json!({"capacities": [{"channel": "api", "capacity": 1}, {"channel": "api", "capacity": 2}]}),
    )
    .await
    .expect_error(422, "validation_failed");
    let agent = app.get(&format!("/api/v1/agents/{ann}")).await.expect(200);
    assert_eq!(agent["capacities"], json!([{"channel": "api", "capacity": 1}]));
    assert!(agent["last_assigned_at"].is_string(), "{agent}");
}

both_backends!(
    cases_go_to_agents_with_the_skill_and_room_and_the_decision_is_explained,
    going_away_gives_unstarted_cases_back_but_pinned_cases_stay,
    manual_assignment_overrides_and_an_agent_cannot_pin,
);

/// Two `caseflow serve` processes on one PostgreSQL database: cases created through both at
/// once are each assigned exactly once and no agent goes over capacity — with one router
/// (the advisory lock) and, to prove the commit-time checks alone suffice, with both nodes
/// routing at once. With one router, when the routing node stops, the other takes over.
async fn two_nodes(single_leader: bool) {
    let a = spawn_with(
        Db::Postgres,
        &[
            ("CASEFLOW__ROUTING__LEADER_RETRY_SECS", "1"),
            ("CASEFLOW__ROUTING__SINGLE_LEADER", if single_leader { "true" } else { "false" }),
            // Routers at once share the signals (each change reaches whichever reads it
            // first), so each also reloads everything every second: stale views on both
            // sides, as in a split brain, racing on every decision.
            ("CASEFLOW__ROUTING__RESYNC_SECS", if single_leader { "300" } else { "1" }),
        ],
    )
    .await;
    let b = spawn_node(a.settings.clone()).await;
    let billing = skill(&a, "billing").await;
    let mut agents = Vec::new();
    for i in 0..4 {
        agents.push(online_agent(&a, &format!("agent{i}@caseflow.test"), &[(&billing, 3)], 5).await);
    }
    // 30 cases through both nodes at once; 20 seats in all.
    let emails: Vec<String> = (0..30).map(|i| format!("c{i}@example.org")).collect();
    let mut tasks = Vec::new();
    for (i, email) in emails.iter().enumerate() {
        let node = if i % 2 == 0 { &a } else { &b };
        tasks.push(case_needing(node, email, &billing));
    }
    let cases: Vec<String> = futures_util::future::join_all(tasks).await;
    let settled = eventually(20, "20 assignments", || async {
        let page = a.get("/api/v1/cases?status=new&limit=100").await.expect(200);
        let n = page["items"].as_array().unwrap().iter().filter(|c| c["assignee_id"].is_string()).count();
        (n == 20).then_some(page)
    })
    .await;
    let mut per_agent = std::collections::HashMap::<String, usize>::new();
    for c in settled["items"].as_array().unwrap() {
        if let Some(who) = c["assignee_id"].as_str() {
            *per_agent.entry(who.to_owned()).or_default() += 1;
        }
    }
    assert!(per_agent.values().all(|&n| n <= 5), "capacity exceeded: {per_agent:?}");
    for case in &cases {
        let events = a.get(&format!("/api/v1/cases/{case}/events")).await.expect(200);
        let n = events["items"].as_array().unwrap().iter().filter(|e| e["kind"] == "assignee_changed").count();
        assert!(n <= 1, "case {case} assigned {n} times: {events}");
    }
    let leaders = [metric(&a, "caseflow_routing_leader").await, metric(&b, "caseflow_routing_leader").await];
    if !single_leader {
        assert_eq!(leaders, [1.0, 1.0], "both route");
        a.stop().await;
        b.stop().await;
        return;
    }
    // Exactly one node routes.
    assert_eq!(leaders.iter().sum::<f64>(), 1.0, "{leaders:?}");

    // The routing node stops; the other takes over: a freed seat is filled again.
    let (leader, standby) = if leaders[0] == 1.0 { (a, b) } else { (b, a) };
    leader.stop().await;
    let busy = settled["items"].as_array().unwrap().iter().find(|c| c["assignee_id"].is_string()).unwrap();
    standby.patch(&format!("/api/v1/cases/{}", id(busy)), json!({"status": "solved"})).await.expect(200);
    eventually(20, "the standby to route", || async {
        let page = standby.get("/api/v1/cases?status=new&limit=100").await.expect(200);
        let n = page["items"].as_array().unwrap().iter().filter(|c| c["assignee_id"].is_string()).count();
        (n == 20).then_some(())
    })
    .await;
    assert_eq!(metric(&standby, "caseflow_routing_leader").await, 1.0);
    standby.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_database_never_double_assign() {
    two_nodes(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_routing_at_once_still_never_double_assign_or_overfill() {
    two_nodes(false).await;
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let addr = app.running.as_ref().unwrap().metrics_addr.unwrap();
    let text = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not in metrics"))
}

/// Overflow with short timers: a team-bound case goes to another team after
/// `widen_team_after_secs`; a case nobody can take is escalated once, also across resyncs.
async fn overflow_widens_the_team_then_escalates_once(db: Db) {
    let app = spawn_with(
        db,
        &[
            ("CASEFLOW__ROUTING__WIDEN_TEAM_AFTER_SECS", "1"),
            ("CASEFLOW__ROUTING__ESCALATE_AFTER_SECS", "2"),
            ("CASEFLOW__ROUTING__RESYNC_SECS", "1"),
        ],
    )
    .await;
    let billing = skill(&app, "billing").await;
    let rare = skill(&app, "klingon").await;
    let east = id(&app.post("/api/v1/teams", json!({"name": "East"})).await.expect(201));
    let west = id(&app.post("/api/v1/teams", json!({"name": "West"})).await.expect(201));
    let ann = online_agent(&app, "ann@caseflow.test", &[(&billing, 3)], 5).await;
    app.patch(&format!("/api/v1/agents/{ann}"), json!({"team_id": west})).await.expect(200);
    let body = json!({
        "subject": "Invoice", "body": "Wrong amount.", "customer": {"email": "east@example.org"},
        "team_id": east, "skills": [{"skill_id": billing}],
    });
    let case = id(&app.post("/api/v1/cases", body).await.expect(201));
    // Nobody in East: it waits (team excluded), then goes to Ann in West.
    assert_eq!(assigned_to(&app, &case).await, ann);
    let r = routing(&app, &case).await;
    let first = r["decisions"].as_array().unwrap().last().unwrap();
    assert_eq!(first["outcome"], "waiting");
    assert!(first["explanation"]["excluded_team"].as_u64().unwrap() >= 1, "{first}");
    let d = &r["decisions"][0];
    assert_eq!(d["outcome"], "assigned");
    assert!(d["explanation"]["overflow"].as_array().unwrap().contains(&json!("team_widened")), "{d}");

    let lone = case_needing(&app, "lone@example.org", &rare).await;
    eventually(15, "the escalation", || async {
        let r = routing(&app, &lone).await;
        r["decisions"].as_array().unwrap().iter().any(|d| d["outcome"] == "escalated").then_some(())
    })
    .await;
    // Several resyncs later: still one escalation, one audit event.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let r = routing(&app, &lone).await;
    let n = r["decisions"].as_array().unwrap().iter().filter(|d| d["outcome"] == "escalated").count();
    assert_eq!(n, 1, "{r}");
    let events = app.get(&format!("/api/v1/cases/{lone}/events")).await.expect(200);
    let n = events["items"].as_array().unwrap().iter().filter(|e| e["kind"] == "routing_escalated").count();
    assert_eq!(n, 1, "{events}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_widens_the_team_then_escalates_once_sqlite() {
    overflow_widens_the_team_then_escalates_once(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_widens_the_team_then_escalates_once_postgres() {
    overflow_widens_the_team_then_escalates_once(Db::Postgres).await;
}

async fn act(app: &TestApp, token: &str, case: &str, what: &str) -> Resp {
    app.call(reqwest::Method::POST, &format!("/api/v1/cases/{case}/offer/{what}"), Some(token), None).await
}

/// Offer mode: routing offers a case; the agent accepts it, declines it (and is set away),
/// or lets it expire (and is set away); the case moves on each time, all of it audited.
async fn offers_are_accepted_declined_or_expire(db: Db) {
    let app = spawn_with(db, &[("CASEFLOW__ROUTING__OFFER_TIMEOUT_SECS", "2")]).await;
    let billing = skill(&app, "billing").await;
    let (ann, ann_token) = online_agent_with_token(&app, "ann@caseflow.test", &[(&billing, 3)], 1).await;
    let offer = |case: String| {
        let app = &app;
        async move {
            eventually(15, "an offer", || async {
                let r = routing(app, &case).await;
                (r["state"] == "offered").then_some(r)
            })
            .await
        }
    };

    // Offered, not assigned, until Ann accepts; the offer holds Ann's only seat, so another
    // case waits meanwhile.
    let one = case_needing(&app, "one@example.org", &billing).await;
    let r = offer(one.clone()).await;
    assert_eq!(r["offered_to"], ann.as_str());
    assert!(r["offer_expires_at"].is_string(), "{r}");
    assert_eq!(assignee(&app, &one).await, None);
    let held = case_needing(&app, "held@example.org", &billing).await;
    let r = eventually(15, "a waiting decision", || async {
        let r = routing(&app, &held).await;
        r["decisions"].as_array().is_some_and(|d| !d.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(r["state"], "waiting", "the offer holds the seat: {r}");
    assert!(r["decisions"][0]["explanation"]["excluded_capacity"].as_u64().unwrap() >= 1, "{r}");
    // A supervisor assigns it by hand elsewhere: nothing is offered to Ann twice.
    let (carl, _) = app.agent("carl@caseflow.test", "agent").await;
    app.patch(&format!("/api/v1/cases/{held}"), json!({"assignee_id": carl})).await.expect(200);
    let (bob, bob_token) = online_agent_with_token(&app, "bob@caseflow.test", &[(&billing, 3)], 1).await;
    act(&app, &bob_token, &one, "accept").await.expect_error(409, "invalid_transition");
    let accepted = act(&app, &ann_token, &one, "accept").await.expect(200);
    assert_eq!((accepted["state"].as_str(), accepted["assignee_id"].as_str()), (Some("assigned"), Some(ann.as_str())));
    act(&app, &ann_token, &one, "accept").await.expect_error(409, "invalid_transition");

    // Ann is full: the next case is offered to Bob, who declines: he is set away and the case
    // waits (nobody else has room).
    let two = case_needing(&app, "two@example.org", &billing).await;
    assert_eq!(offer(two.clone()).await["offered_to"], bob.as_str());
    let declined = act(&app, &bob_token, &two, "decline").await.expect(200);
    assert_eq!(declined["state"], "waiting");
    assert_eq!(app.get(&format!("/api/v1/agents/{bob}")).await.expect(200)["presence"], "away");
    // The router's next pass finds nobody with room and records why the case waits (before
    // Ann's seat frees up below; otherwise that pass would offer it to her straight away).
    eventually(15, "the waiting decision after the decline", || async {
        let r = routing(&app, &two).await;
        (r["decisions"][0]["outcome"] == "waiting").then_some(())
    })
    .await;

    // Ann finishes her case and gets the offer, and lets it expire: she is set away too.
    app.patch(&format!("/api/v1/cases/{one}"), json!({"status": "solved"})).await.expect(200);
    assert_eq!(offer(two.clone()).await["offered_to"], ann.as_str());
    // Expired, then (next router pass) recorded as waiting again.
    let expired = eventually(15, "the offer to expire", || async {
        let r = routing(&app, &two).await;
        (r["state"] == "waiting" && r["decisions"][0]["outcome"] == "waiting").then_some(r)
    })
    .await;
    let outcomes: Vec<&str> =
        expired["decisions"].as_array().unwrap().iter().filter_map(|d| d["outcome"].as_str()).collect();
    // Newest first: each time the case came back with nobody free, it recorded why it waits.
    assert_eq!(outcomes, ["waiting", "offer_expired", "offered", "waiting", "declined", "offered"]);
    let ann_now = app.get(&format!("/api/v1/agents/{ann}")).await.expect(200);
    assert_eq!(ann_now["presence"], "away");
    let log = app.get(&format!("/api/v1/agents/{ann}/events")).await.expect(200);
    let last = log["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["kind"].as_str(), last["data"]["reason"].as_str()),
        (Some("presence_changed"), Some("offer_expired"))
    );
    let events = app.get(&format!("/api/v1/cases/{two}/events")).await.expect(200);
    let kinds: Vec<&str> = events["items"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    for k in ["offered", "offer_declined", "offer_expired"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    // An expired offer cannot be accepted any more.
    act(&app, &ann_token, &two, "accept").await.expect_error(409, "invalid_transition");
    // Back online, Ann is offered it again; a supervisor assigns it to Carl instead: the offer
    // is withdrawn (audited) and Ann's seat is free for the next case.
    app.put(&format!("/api/v1/agents/{ann}/presence"), json!({"presence": "online"})).await.expect(200);
    assert_eq!(offer(two.clone()).await["offered_to"], ann.as_str());
    app.patch(&format!("/api/v1/cases/{two}"), json!({"assignee_id": carl})).await.expect(200);
    let r = routing(&app, &two).await;
    assert_eq!((r["state"].as_str(), r["offered_to"].is_null()), (Some("assigned"), true), "{r}");
    let events = app.get(&format!("/api/v1/cases/{two}/events")).await.expect(200);
    assert!(events["items"].as_array().unwrap().iter().any(|e| e["kind"] == "offer_withdrawn"), "{events}");
    act(&app, &ann_token, &two, "accept").await.expect_error(409, "invalid_transition");
    let three = case_needing(&app, "three@example.org", &billing).await;
    assert_eq!(offer(three.clone()).await["offered_to"], ann.as_str());
    // Ann finds her open offers in the case list.
    let mine = app.call(reqwest::Method::GET, "/api/v1/cases?offered_to=me", Some(&ann_token), None).await.expect(200);
    let ids: Vec<&str> = mine["items"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, [three.as_str()]);
    act(&app, &ann_token, &three, "accept").await.expect(200);
    assert_eq!(assignee(&app, &three).await.as_deref(), Some(ann.as_str()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_are_accepted_declined_or_expire_sqlite() {
    offers_are_accepted_declined_or_expire(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_are_accepted_declined_or_expire_postgres() {
    offers_are_accepted_declined_or_expire(Db::Postgres).await;
}
