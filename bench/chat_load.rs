//! Chat load generator: N concurrent visitor sessions on a running server, one agent socket.
//! Measures the round trip customer → agent socket (send on the visitor's socket until the
//! line arrives on the agent's socket) and the visitor's acknowledgement time (stored and
//! acknowledged), p50/p90/p99/max.
//!
//! Usage (scripts/bench-chat.sh runs it against a release server):
//!   chat-load URL TOKEN [SESSIONS=1000] [MESSAGES_PER_SESSION=5] [RATE_PER_SEC=200]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Sent = Arc<Mutex<HashMap<String, Instant>>>;

fn percentiles(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    format!("n={} p50={:.1} ms p90={:.1} ms p99={:.1} ms max={:.1} ms", v.len(), p(0.5), p(0.9), p(0.99), p(1.0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = args.get(1).expect("URL").trim_end_matches('/').replace("http://", "ws://");
    let token = args.get(2).expect("TOKEN").clone();
    let sessions: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let per_session: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(5);
    let rate: f64 = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(200.0);

    // The agent's socket records when each visitor line arrives.
    let sent: Sent = Arc::new(Mutex::new(HashMap::new()));
    let round_trips = Arc::new(Mutex::new(Vec::new()));
    let mut req = format!("{base}/api/v1/chat/ws").into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (agent, _) = tokio_tungstenite::connect_async_with_config(req, None, true).await.expect("agent socket");
    let (_, mut agent_rx) = agent.split();
    {
        let (sent, round_trips) = (sent.clone(), round_trips.clone());
        tokio::spawn(async move {
            while let Some(Ok(frame)) = agent_rx.next().await {
                let now = Instant::now();
                let Message::Text(t) = frame else { continue };
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "message" && v["author"] == "customer" {
                    if let Some(at) = v["client_id"].as_str().and_then(|c| sent.lock().unwrap().remove(c)) {
                        round_trips.lock().unwrap().push(now - at);
                    }
                }
            }
        });
    }

    // Open every session and its case (first message) before measuring.
    let t0 = Instant::now();
    let mut sockets = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(format!("{base}/chat/ws"), None, true)
            .await
            .expect("visitor socket");
        ws.send(Message::text(json!({"type": "start", "name": format!("Load {i}")}).to_string())).await.unwrap();
        ws.send(Message::text(
            json!({"type": "message", "client_id": format!("open-{i}"), "body": "hello"}).to_string(),
        ))
        .await
        .unwrap();
        loop {
            let m = ws.next().await.expect("open").unwrap();
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                assert_ne!(v["type"], "error", "{v}");
                if v["type"] == "ack" {
                    break;
                }
            }
        }
        sockets.push(ws);
    }
    eprintln!("{sessions} sessions open in {:.1} s", t0.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_millis(500)).await;
    sent.lock().unwrap().clear();
    round_trips.lock().unwrap().clear();

    // Each session sends its messages; sessions are staggered so that the total is `rate`/s.
    let acks = Arc::new(Mutex::new(Vec::new()));
    let interval = Duration::from_secs_f64(sessions as f64 / rate);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        let (sent, acks) = (sent.clone(), acks.clone());
        let offset = interval.mul_f64(i as f64 / sessions as f64);
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = ws.split();
            let mut pending: HashMap<String, Instant> = HashMap::new();
            tokio::time::sleep(offset).await;
            let mut tick = tokio::time::interval(interval);
            let mut n = 0;
            loop {
                tokio::select! {
                    _ = tick.tick(), if n < per_session => {
                        let cid = format!("s{i}-m{n}");
                        let now = Instant::now();
                        sent.lock().unwrap().insert(cid.clone(), now);
                        pending.insert(cid.clone(), now);
                        tx.send(Message::text(json!({"type": "message", "client_id": cid, "body": format!("message {n}")}).to_string())).await.unwrap();
                        n += 1;
                    }
                    m = rx.next() => match m {
                        Some(Ok(Message::Text(t))) => {
                            let v: Value = serde_json::from_str(t.as_str()).unwrap();
                            if v["type"] == "ack" {
                                if let Some(at) = v["client_id"].as_str().and_then(|c| pending.remove(c)) {
                                    acks.lock().unwrap().push(at.elapsed());
                                }
                            } else if v["type"] == "error" {
                                panic!("error frame: {v}");
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
                if n == per_session && pending.is_empty() {
                    break;
                }
            }
            let _ = tx.send(Message::Close(None)).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    // Let the last lines reach the agent.
    for _ in 0..50 {
        if sent.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = sessions * per_session;
    let lost = sent.lock().unwrap().len();
    println!(
        "sessions: {sessions}, messages: {total} in {:.1} s ({:.0}/s offered {rate}/s)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!("visitor ack (stored + acknowledged): {}", percentiles(acks.lock().unwrap().clone()));
    println!("round trip visitor -> agent socket: {}", percentiles(round_trips.lock().unwrap().clone()));
    println!("lines not seen by the agent: {lost}");
}
