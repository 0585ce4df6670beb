//! Time per routing decision with many agents and a deep backlog (issue: 10,000 agents with 5
//! of 16 skills each, 100,000 waiting cases). Every agent is full; each measured step frees
//! one slot of one agent (`release`), which assigns that agent's best waiting case, with its
//! explanation. Sizes 1k/10k/100k show how the cost grows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use caseflow_core::{Channel, Presence, Priority, Tier};
use caseflow_routing::{Agent, Case, Config, Router};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::{Duration, Instant};

/// A small deterministic generator (no dependency, same data every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn build(agents: u32, cases: u64) -> Router {
    let mut rng = Lcg(42);
    let mut r = Router::new(Config::default());
    let mut now = 0;
    for id in 0..agents {
        let mut skills: Vec<(u16, u8)> = Vec::new();
        while skills.len() < 5 {
            let s = u16::try_from(rng.next(16)).unwrap();
            if !skills.iter().any(|k| k.0 == s) {
                skills.push((s, u8::try_from(1 + rng.next(5)).unwrap()));
            }
        }
        // Full from the start: the backlog builds up.
        let a = Agent {
            id,
            team: None,
            presence: Presence::Online,
            skills,
            capacity: [2, 2, 3, 2],
            load: [2, 2, 3, 2],
            last_assigned_at: 0,
        };
        r.upsert_agent(a, now);
    }
    for id in 0..cases {
        now += 10;
        let n = 1 + rng.next(2);
        let required: Vec<(u16, u8)> =
            (0..n).map(|_| (u16::try_from(rng.next(16)).unwrap(), u8::try_from(1 + rng.next(3)).unwrap())).collect();
        let c = Case {
            id,
            channel: [Channel::Email, Channel::Web, Channel::Chat, Channel::Api][usize::try_from(rng.next(4)).unwrap()],
            priority: [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent]
                [usize::try_from(rng.next(4)).unwrap()],
            tier: [Tier::Standard, Tier::Silver, Tier::Gold, Tier::Platinum][usize::try_from(rng.next(4)).unwrap()],
            value: i64::try_from(rng.next(100_000)).unwrap(),
            required,
            optional: vec![u16::try_from(rng.next(16)).unwrap()],
            team: None,
            enqueued_at: now,
            sla_due: None,
        };
        let (d, _) = r.route(c, now);
        assert!(d.is_empty());
    }
    r
}

fn decisions(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    for (agents, cases) in
        [(1_000u32, 1_000u64), (1_000, 10_000), (10_000, 10_000), (10_000, 100_000), (100_000, 100_000)]
    {
        let base = build(agents, cases);
        let label = format!("{agents}_agents_{cases}_cases");
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_custom(|iters| {
                // Time per decision: releases that find nothing for the agent count too; a
                // drained backlog is rebuilt outside the timing.
                let mut r = base.clone();
                let channels = [Channel::Email, Channel::Web, Channel::Chat, Channel::Api];
                let now = i64::try_from(cases).unwrap() * 10 + 1_000;
                let mut spent = Duration::ZERO;
                let (mut made, mut i) = (0u64, 0u64);
                while made < iters {
                    if r.waiting() == 0 {
                        r = base.clone();
                    }
                    let agent = u32::try_from(i % u64::from(agents)).unwrap();
                    let ch = channels[usize::try_from((i / u64::from(agents)) % 4).unwrap()];
                    i += 1;
                    let start = Instant::now();
                    let d = r.release(agent, ch, now);
                    spent += start.elapsed();
                    made += d.len() as u64;
                    std::hint::black_box(d);
                }
                spent
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
