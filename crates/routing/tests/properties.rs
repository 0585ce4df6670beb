//! Property tests of the routing engine over random agents and random event sequences:
//! required skills always met, capacity never exceeded, no case assigned twice, no waiting case
//! left while an eligible agent has room, the fairness bound, and equal results for equal
//! inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use caseflow_core::{Channel, Presence, Priority, Tier};
use caseflow_routing::{Agent, Case, CaseKey, Config, Decision, Millis, Router};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

const X: Millis = 60_000;
const WIDEN: Millis = 90_000;

fn ch(i: u8) -> Channel {
    [Channel::Email, Channel::Web, Channel::Chat, Channel::Api][usize::from(i % 4)]
}

fn slot(c: Channel) -> usize {
    match c {
        Channel::Email => 0,
        Channel::Web => 1,
        Channel::Chat => 2,
        Channel::Api => 3,
    }
}

#[derive(Debug, Clone)]
enum Event {
    /// A new case; fields drawn from small ranges so that matches and conflicts happen.
    Case {
        skills: Vec<(u16, u8)>,
        channel: u8,
        priority: u8,
        tier: u8,
        value: i64,
        team: Option<u32>,
        sla_in: Option<i64>,
    },
    Release {
        agent: u32,
        channel: u8,
    },
    Presence {
        agent: u32,
        online: bool,
    },
    Wait {
        ms: i64,
    },
}

fn agent_strategy() -> impl proptest::strategy::Strategy<Value = Agent> {
    (
        prop::collection::vec((0u16..5, 1u8..=5), 0..4),
        prop::array::uniform4(0u16..3),
        prop::option::of(0u32..2),
        any::<bool>(),
    )
        .prop_map(|(skills, capacity, team, online)| Agent {
            id: 0,
            team,
            presence: if online { Presence::Online } else { Presence::Away },
            skills,
            capacity,
            load: [0; 4],
            last_assigned_at: 0,
        })
}

fn event_strategy(agents: u32) -> impl proptest::strategy::Strategy<Value = Event> {
    prop_oneof![
        4 => (
            prop::collection::vec((0u16..5, 1u8..=3), 0..3),
            0u8..4, 0u8..4, 0u8..4, 0i64..200_000,
            prop::option::of(0u32..2),
            prop::option::of(0i64..120_000),
        )
            .prop_map(|(skills, channel, priority, tier, value, team, sla_in)| Event::Case {
                skills, channel, priority, tier, value, team, sla_in
            }),
        2 => (0..agents, 0u8..4).prop_map(|(agent, channel)| Event::Release { agent, channel }),
        1 => (0..agents, any::<bool>()).prop_map(|(agent, online)| Event::Presence { agent, online }),
        3 => (1i64..40_000).prop_map(|ms| Event::Wait { ms }),
    ]
}

fn scenario() -> impl proptest::strategy::Strategy<Value = (Vec<Agent>, Vec<Event>, caseflow_routing::Strategy)> {
    prop::collection::vec(agent_strategy(), 1..8).prop_flat_map(|agents| {
        let n = u32::try_from(agents.len()).unwrap();
        (
            Just(agents),
            prop::collection::vec(event_strategy(n), 1..120),
            prop_oneof![
                Just(caseflow_routing::Strategy::LeastBusy),
                Just(caseflow_routing::Strategy::LongestIdle),
                Just(caseflow_routing::Strategy::BestSkillMatch),
            ],
        )
    })
}

fn config(strategy: caseflow_routing::Strategy) -> Config {
    Config {
        strategy,
        fairness_after_ms: X,
        sla_risk_ms: 30_000,
        widen_team_after_ms: WIDEN,
        escalate_after_ms: 120_000,
        ..Config::default()
    }
}

/// What the test knows independently of the engine.
struct Model {
    agents: HashMap<u32, Agent>,
    waiting: HashMap<CaseKey, Case>,
    assigned: HashSet<CaseKey>,
}

impl Model {
    fn qualifies(&self, a: &Agent, c: &Case, now: Millis) -> bool {
        let ch = slot(c.channel);
        let team_ok = match c.team {
            Some(t) if now - c.enqueued_at < WIDEN => a.team == Some(t),
            _ => true,
        };
        a.presence == Presence::Online
            && a.load[ch] < a.capacity[ch]
            && team_ok
            && c.required.iter().all(|&(s, l)| a.skills.iter().any(|k| k.0 == s && k.1 >= l))
    }

    /// Checks one decision against the state before it, then applies it.
    fn apply(&mut self, d: &Decision, now: Millis) {
        let case = self.waiting.get(&d.case).cloned().expect("a decision for a case that was not waiting");
        let agent = self.agents.get(&d.agent).cloned().unwrap();
        assert!(self.qualifies(&agent, &case, now), "ineligible assignment: {case:?} to {agent:?}");
        assert!(self.assigned.insert(d.case), "case {} assigned twice", d.case);
        // The fairness bound: no older case past the bound that this agent could take waits on.
        for other in self.waiting.values() {
            if other.id != case.id
                && other.enqueued_at < case.enqueued_at
                && now - other.enqueued_at > X
                && self.qualifies(&agent, other, now)
            {
                panic!(
                    "case {} (waited {} ms) passed over for newer case {}",
                    other.id,
                    now - other.enqueued_at,
                    case.id
                );
            }
        }
        self.waiting.remove(&d.case);
        let a = self.agents.get_mut(&d.agent).unwrap();
        a.load[slot(case.channel)] += 1;
        assert!(a.load[slot(case.channel)] <= a.capacity[slot(case.channel)], "capacity exceeded");
        a.last_assigned_at = now;
    }

    /// No waiting case is left while an agent could take it.
    fn settled(&self, now: Millis) {
        for c in self.waiting.values() {
            for a in self.agents.values() {
                assert!(!self.qualifies(a, c, now), "case {} waits while agent {} could take it", c.id, a.id);
            }
        }
    }
}

/// Runs the scenario; returns every decision in order.
fn run(agents: &[Agent], events: &[Event], strategy: caseflow_routing::Strategy, check: bool) -> Vec<Decision> {
    let mut r = Router::new(config(strategy));
    let mut m = Model { agents: HashMap::new(), waiting: HashMap::new(), assigned: HashSet::new() };
    let mut all = Vec::new();
    let mut now: Millis = 1_000;
    for (i, a) in agents.iter().enumerate() {
        let a = Agent { id: u32::try_from(i).unwrap(), ..a.clone() };
        m.agents.insert(a.id, a.clone());
        let d = r.upsert_agent(a, now);
        assert!(d.is_empty());
    }
    let mut next_case: CaseKey = 1;
    for e in events {
        let (ticked, _) = r.tick(now);
        for d in &ticked {
            if check {
                m.apply(d, now);
            }
        }
        all.extend(ticked);
        let decisions = match e {
            Event::Case { skills, channel, priority, tier, value, team, sla_in } => {
                let c = Case {
                    id: next_case,
                    channel: ch(*channel),
                    priority: [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent]
                        [usize::from(*priority)],
                    tier: [Tier::Standard, Tier::Silver, Tier::Gold, Tier::Platinum][usize::from(*tier)],
                    value: *value,
                    required: skills.clone(),
                    optional: vec![1],
                    team: *team,
                    enqueued_at: now,
                    sla_due: sla_in.map(|s| now + s),
                };
                next_case += 1;
                m.waiting.insert(c.id, c.clone());
                r.route(c, now).0
            }
            Event::Release { agent, channel } => {
                let a = m.agents.get_mut(agent).unwrap();
                let s = slot(ch(*channel));
                a.load[s] = a.load[s].saturating_sub(1);
                r.release(*agent, ch(*channel), now)
            }
            Event::Presence { agent, online } => {
                let a = m.agents.get_mut(agent).unwrap();
                a.presence = if *online { Presence::Online } else { Presence::Offline };
                let a = r.agent(*agent).cloned().map(|x| Agent { presence: a.presence, ..x }).unwrap();
                r.upsert_agent(a, now)
            }
            Event::Wait { ms } => {
                now += ms;
                Vec::new()
            }
        };
        for d in &decisions {
            if check {
                m.apply(d, now);
            }
        }
        all.extend(decisions);
        if check {
            // The engine's own view of load matches the model's.
            for a in m.agents.values() {
                assert_eq!(r.agent(a.id).unwrap().load, a.load, "agent {}", a.id);
            }
            assert_eq!(r.waiting(), m.waiting.len());
            if !matches!(e, Event::Wait { .. }) {
                m.settled(now);
            }
        }
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn assignments_respect_skills_capacity_uniqueness_and_the_fairness_bound((agents, events, strategy) in scenario()) {
        run(&agents, &events, strategy, true);
    }

    #[test]
    fn equal_inputs_give_equal_decisions((agents, events, strategy) in scenario()) {
        let a = run(&agents, &events, strategy, false);
        let b = run(&agents, &events, strategy, false);
        prop_assert_eq!(a, b);
    }
}
