//! Routing load generator: end-to-end assignment throughput and latency through a running
//! server (HTTP API → database → triggers → router → committed assignment).
//!
//! 1. Setup: 16 skills; AGENTS agents with 5 random skills each (levels 3–5), capacity 1000
//!    on the API channel, all offline.
//! 2. Backlog: BACKLOG cases, each requiring 1–2 random skills (minimum level 1–3), created
//!    by 16 concurrent clients; nobody is online, so they all wait.
//! 3. Drain: every agent goes online; the router assigns the backlog. Reported: assignments
//!    per second (from the first presence change until the last assignment).
//! 4. Steady: STEADY more cases at RATE per second with agents online. Reported: the time from
//!    a case's creation to its assignment (the server's own timestamps: `created_at` of the
//!    case and of its `assigned` routing decision), p50/p90/p99/max.
//!
//! Usage (scripts/bench-routing.sh runs it against a release server):
//!   routing-load URL ADMIN_TOKEN METRICS_URL [AGENTS=200] [BACKLOG=10000] [STEADY=2000] [RATE=200]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A small deterministic generator (the same run every time).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.client.request(method, format!("{}/api/v1{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }
}

async fn assigned_total(client: &reqwest::Client, metrics: &str) -> u64 {
    let text = client.get(metrics).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("caseflow_routing_decisions_total{outcome=\"assigned\"}"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Waits until the assigned counter reaches `target` or stops moving for 3 s; returns the
/// count and when it last moved.
async fn settle(client: &reqwest::Client, metrics: &str, target: u64) -> (u64, Instant) {
    let mut last = assigned_total(client, metrics).await;
    let mut moved = Instant::now();
    while last < target && moved.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = assigned_total(client, metrics).await;
        if now != last {
            last = now;
            moved = Instant::now();
        }
    }
    (last, moved)
}

fn case_body(rng: &mut Lcg, skills: &[String], i: usize) -> Value {
    let n = 1 + rng.next(2);
    let mut req: Vec<Value> = Vec::new();
    let mut used = Vec::new();
    while req.len() < n {
        let s = rng.next(skills.len());
        if !used.contains(&s) {
            used.push(s);
            req.push(json!({"skill_id": skills[s], "min_level": 1 + rng.next(3)}));
        }
    }
    let priority = ["low", "normal", "high", "urgent"][rng.next(4)];
    json!({
        "subject": format!("Load case {i}"),
        "body": "Routing load test.",
        "customer": {"email": format!("load{}@example.org", i % 5000)},
        "priority": priority,
        "skills": req,
    })
}

fn percentiles(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort_by(f64::total_cmp);
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    format!("n={} p50={:.1} ms p90={:.1} ms p99={:.1} ms max={:.1} ms", v.len(), p(0.5), p(0.9), p(0.99), p(1.0))
}

fn millis(v: &Value) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(v.as_str().expect("timestamp")).expect("rfc3339");
    t.timestamp_micros() as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = args.get(1).expect("URL").trim_end_matches('/').to_owned();
    let token = args.get(2).expect("ADMIN_TOKEN").clone();
    let metrics = args.get(3).expect("METRICS_URL").clone();
    let agents: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(200);
    let backlog: usize = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let steady: usize = args.get(6).and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let rate: f64 = args.get(7).and_then(|s| s.parse().ok()).unwrap_or(200.0);
    let api = std::sync::Arc::new(Api { client: reqwest::Client::new(), base, token });
    let mut rng = Lcg(42);

    // 1. Setup.
    let mut skills = Vec::new();
    for i in 0..16 {
        let s = api.call(reqwest::Method::POST, "/skills", Some(json!({"name": format!("skill-{i}")}))).await;
        skills.push(s["id"].as_str().unwrap().to_owned());
    }
    let mut agent_ids = Vec::new();
    for i in 0..agents {
        let a = api
            .call(
                reqwest::Method::POST,
                "/agents",
                Some(json!({"email": format!("agent{i}@load.test"), "name": format!("Agent {i}"), "role": "agent"})),
            )
            .await;
        let id = a["id"].as_str().unwrap().to_owned();
        let mut mine: Vec<Value> = Vec::new();
        let mut used = Vec::new();
        while mine.len() < 5 {
            let s = rng.next(skills.len());
            if !used.contains(&s) {
                used.push(s);
                mine.push(json!({"skill_id": skills[s], "level": 3 + rng.next(3)}));
            }
        }
        api.call(reqwest::Method::PUT, &format!("/agents/{id}/skills"), Some(json!({ "skills": mine }))).await;
        api.call(
            reqwest::Method::PUT,
            &format!("/agents/{id}/capacities"),
            Some(json!({"capacities": [{"channel": "api", "capacity": 1000}]})),
        )
        .await;
        agent_ids.push(id);
    }

    // 2. Backlog.
    let bodies: Vec<Value> = (0..backlog).map(|i| case_body(&mut rng, &skills, i)).collect();
    let started = Instant::now();
    futures_util::stream::iter(bodies)
        .for_each_concurrent(16, |b| {
            let api = api.clone();
            async move {
                api.call(reqwest::Method::POST, "/cases", Some(b)).await;
            }
        })
        .await;
    let took = started.elapsed().as_secs_f64();
    println!("backlog: {backlog} cases created in {took:.2} s = {:.0} cases/s (16 clients)", backlog as f64 / took);

    // 3. Drain.
    let before = assigned_total(&api.client, &metrics).await;
    let started = Instant::now();
    for id in &agent_ids {
        api.call(reqwest::Method::PUT, &format!("/agents/{id}/presence"), Some(json!({"presence": "online"}))).await;
    }
    let online = started.elapsed().as_secs_f64();
    let (after, last) = settle(&api.client, &metrics, before + backlog as u64).await;
    let n = after - before;
    let took = (last - started).as_secs_f64();
    println!(
        "drain: {agents} agents online in {online:.2} s; {n} of {backlog} waiting cases assigned in {took:.2} s = {:.0} assignments/s",
        n as f64 / took
    );

    // 4. Steady.
    let before = assigned_total(&api.client, &metrics).await;
    let bodies: Vec<Value> = (0..steady).map(|i| case_body(&mut rng, &skills, backlog + i)).collect();
    let started = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / rate);
    let mut tasks = Vec::new();
    for (i, b) in bodies.into_iter().enumerate() {
        let due = started + gap * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let api = api.clone();
        tasks.push(tokio::spawn(async move { api.call(reqwest::Method::POST, "/cases", Some(b)).await }));
    }
    let mut created = Vec::new();
    for t in tasks {
        created.push(t.await.unwrap());
    }
    let sent = started.elapsed().as_secs_f64();
    let (after, _) = settle(&api.client, &metrics, before + steady as u64).await;
    let mut latencies = Vec::new();
    for c in &created {
        let id = c["id"].as_str().unwrap();
        let r = api.call(reqwest::Method::GET, &format!("/cases/{id}/routing"), None).await;
        if let Some(d) = r["decisions"].as_array().and_then(|d| d.iter().find(|d| d["outcome"] == "assigned")) {
            latencies.push(millis(&d["created_at"]) - millis(&c["created_at"]));
        }
    }
    println!(
        "steady: {steady} cases at {:.0}/s, {} assigned; created -> assigned: {}",
        steady as f64 / sent,
        after - before,
        percentiles(latencies)
    );
}
