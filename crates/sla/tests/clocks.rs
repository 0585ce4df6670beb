//! SLA clocks from a case's history: deadlines, pauses, reply cycles, breaches, ladders and
//! explanations; policy matching; properties over random histories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use caseflow_core::{CaseStatus, Channel, Priority, Tier};
use caseflow_sla::policy::{select, Action, Conditions, Facts, Metric, PolicyError, PolicySpec, Step, StepOn, Target};
use caseflow_sla::{
    evaluate, Calendar, CalendarSpec, Clock, ClockState, Day, Event, EventKind, MilestoneKind, Opening,
};
use chrono::TimeZone;
use chrono_tz::Tz;
use proptest::prelude::*;

fn calendar() -> Calendar {
    let weekdays = vec![Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri];
    Calendar::from_spec(&CalendarSpec {
        name: "EU support".into(),
        time_zone: "Europe/Paris".into(),
        hours: vec![
            Opening { days: weekdays.clone(), from: "09:00".into(), to: "12:30".into() },
            Opening { days: weekdays, from: "13:30".into(), to: "18:00".into() },
        ],
        holidays: vec![],
        closures: vec![],
    })
    .unwrap()
}

fn target(metric: Metric, minutes: u32) -> Target {
    Target { metric, minutes, business_hours: true }
}

fn gold() -> PolicySpec {
    PolicySpec {
        name: "Gold urgent".into(),
        conditions: Conditions { priorities: vec![Priority::Urgent], tiers: vec![Tier::Gold], ..Conditions::default() },
        calendar: Some("EU support".into()),
        targets: vec![
            target(Metric::FirstResponse, 240),
            target(Metric::NextResponse, 120),
            target(Metric::Resolution, 16 * 60),
        ],
        warning: caseflow_sla::Warning { percent: Some(75), minutes_before: None },
        pause_on: vec![CaseStatus::Pending, CaseStatus::OnHold],
        acknowledge_within_secs: 60,
        ladder: vec![
            Step { on: StepOn::Warning, after_minutes: 0, action: Action::NotifyAssignee, metrics: vec![] },
            Step { on: StepOn::Breach, after_minutes: 0, action: Action::AlertSupervisors, metrics: vec![] },
            Step { on: StepOn::Breach, after_minutes: 0, action: Action::RaisePriority, metrics: vec![] },
            Step {
                on: StepOn::Breach,
                after_minutes: 60,
                action: Action::Reassign,
                metrics: vec![Metric::FirstResponse],
            },
        ],
    }
}

/// Paris wall time in December 2026 (Monday 7th is the first day used).
fn paris(day: u32, h: u32, m: u32) -> i64 {
    let tz: Tz = "Europe/Paris".parse().unwrap();
    tz.with_ymd_and_hms(2026, 12, day, h, m, 0).single().unwrap().timestamp()
}

fn ev(at: i64, kind: EventKind) -> Event {
    Event { at, kind }
}

fn clock(clocks: &[Clock], metric: Metric, cycle: u32) -> Clock {
    clocks.iter().find(|c| c.metric == metric && c.cycle == cycle).cloned().unwrap_or_else(|| {
        panic!("no {metric:?} clock {cycle} in {clocks:#?}");
    })
}

#[test]
fn a_new_case_is_due_in_business_hours_with_warning_and_ladder() {
    let cal = calendar();
    let created = paris(7, 10, 0);
    let clocks = evaluate(&gold(), Some(&cal), created, &[], paris(7, 10, 5));
    let first = clock(&clocks, Metric::FirstResponse, 0);
    assert_eq!(first.state, ClockState::Running);
    // 10:00 → 12:30 is 2h30, then 1h30 from 13:30.
    assert_eq!(first.due_at, Some(paris(7, 15, 0)));
    assert_eq!(first.warn_at(), Some(paris(7, 14, 0)), "75% of 4 business hours");
    assert!(!first.breached);
    assert_eq!(first.elapsed_secs, 300);
    let kinds: Vec<(MilestoneKind, i64)> = first.milestones.iter().map(|m| (m.kind, m.at)).collect();
    assert_eq!(
        kinds,
        vec![
            (MilestoneKind::Warning, paris(7, 14, 0)),
            (MilestoneKind::Step(0), paris(7, 14, 0)),
            (MilestoneKind::Breach, paris(7, 15, 0)),
            (MilestoneKind::Step(1), paris(7, 15, 0)),
            (MilestoneKind::Step(2), paris(7, 15, 0)),
            (MilestoneKind::Step(3), paris(7, 16, 0)),
        ]
    );
    assert_eq!(
        first.explanation,
        "due Mon 07 Dec 15:00 Europe/Paris: first response, policy \"Gold urgent\", 4 business hours, \
         calendar \"EU support\""
    );
    // The reassign step is for first response only.
    let resolution = clock(&clocks, Metric::Resolution, 0);
    assert!(!resolution.milestones.iter().any(|m| m.kind == MilestoneKind::Step(3)));
    // No next-response clock before the first reply.
    assert!(!clocks.iter().any(|c| c.metric == Metric::NextResponse));
    // Later the same day, past the deadline: breached, still running.
    let clocks = evaluate(&gold(), Some(&cal), created, &[], paris(7, 15, 30));
    let first = clock(&clocks, Metric::FirstResponse, 0);
    assert!(first.breached);
    assert!(first.explanation.starts_with("breached Mon 07 Dec 15:00 Europe/Paris"), "{}", first.explanation);
}

#[test]
fn pending_pauses_reply_cycles_and_a_late_reply() {
    let cal = calendar();
    let created = paris(7, 10, 0);
    let events = [
        ev(paris(7, 10, 30), EventKind::AgentReply),
        ev(paris(7, 10, 30), EventKind::Status(CaseStatus::Pending)),
        // The customer answers at 12:40: pending for 2h10m (2h of it business time).
        ev(paris(7, 12, 40), EventKind::Status(CaseStatus::Open)),
        ev(paris(7, 12, 40), EventKind::CustomerMessage),
        // A follow-up does not restart the next-response clock.
        ev(paris(7, 13, 45), EventKind::CustomerMessage),
        ev(paris(7, 15, 0), EventKind::AgentReply),
        ev(paris(7, 16, 0), EventKind::CustomerMessage),
    ];
    let now = paris(7, 16, 30);
    let clocks = evaluate(&gold(), Some(&cal), created, &events, now);
    let first = clock(&clocks, Metric::FirstResponse, 0);
    assert_eq!((first.state, first.ended_at, first.due_at), (ClockState::Fulfilled, Some(paris(7, 10, 30)), None));
    assert_eq!(first.elapsed_secs, 1800);
    assert!(
        first.explanation.starts_with("met Mon 07 Dec 10:30 Europe/Paris with 30m of 4h used"),
        "{}",
        first.explanation
    );
    // Cycle 1: from 12:40 (closed for lunch until 13:30) two business hours → 15:30; met at 15:00.
    let c1 = clock(&clocks, Metric::NextResponse, 1);
    assert_eq!(
        (c1.state, c1.started_at, c1.due_at, c1.breached),
        (ClockState::Fulfilled, paris(7, 12, 40), None, false)
    );
    assert_eq!(c1.elapsed_secs, 90 * 60);
    // Cycle 2: from 16:00, due at closing time.
    let c2 = clock(&clocks, Metric::NextResponse, 2);
    assert_eq!((c2.state, c2.due_at), (ClockState::Running, Some(paris(7, 18, 0))));
    // Resolution: 16 business hours from Monday 10:00 would be Wednesday 10:00; two
    // business hours pending move it to Wednesday 12:00.
    let res = clock(&clocks, Metric::Resolution, 0);
    assert_eq!(res.due_at, Some(paris(9, 12, 0)));
    assert_eq!(res.paused_secs, 2 * 3600 + 600);
    assert!(res.explanation.ends_with("; paused 2h10m while pending"), "{}", res.explanation);
    assert!(res.explanation.starts_with("due Wed 09 Dec 12:00 Europe/Paris: resolution"), "{}", res.explanation);
    // Without the pause: Wednesday 10:00.
    let unpaused: Vec<Event> = events.iter().copied().filter(|e| !matches!(e.kind, EventKind::Status(_))).collect();
    let clocks = evaluate(&gold(), Some(&cal), created, &unpaused, now);
    assert_eq!(clock(&clocks, Metric::Resolution, 0).due_at, Some(paris(9, 10, 0)));

    // A first reply an hour after the deadline: breached, met late; the reassign step (one
    // hour after the breach) is not reached since the reply came at that instant.
    let late = [ev(paris(7, 16, 0), EventKind::AgentReply)];
    let clocks = evaluate(&gold(), Some(&cal), created, &late, paris(7, 17, 0));
    let first = clock(&clocks, Metric::FirstResponse, 0);
    assert_eq!((first.state, first.breached, first.due_at), (ClockState::Fulfilled, true, Some(paris(7, 15, 0))));
    assert!(
        first.explanation.starts_with("met Mon 07 Dec 16:00 Europe/Paris, 1h after its breach"),
        "{}",
        first.explanation
    );
    assert!(!first.milestones.iter().any(|m| m.kind == MilestoneKind::Step(3)));
    assert!(first.milestones.iter().any(|m| m.kind == MilestoneKind::Breach));
}

#[test]
fn paused_clocks_solved_cases_and_reopening() {
    let cal = calendar();
    let created = paris(7, 10, 0);
    // On hold from 11:00, never answered: first response paused with 3h left.
    let held = [ev(paris(7, 11, 0), EventKind::Status(CaseStatus::OnHold))];
    let clocks = evaluate(&gold(), Some(&cal), created, &held, paris(8, 9, 0));
    let first = clock(&clocks, Metric::FirstResponse, 0);
    assert_eq!((first.state, first.due_at, first.elapsed_secs), (ClockState::Paused, None, 3600));
    assert_eq!(first.paused_secs, paris(8, 9, 0) - paris(7, 11, 0));
    assert!(
        first.explanation.starts_with("paused while on_hold since Mon 07 Dec 11:00 Europe/Paris, 3h left"),
        "{}",
        first.explanation
    );
    // Solved without a reply: first response stopped, resolution met; reopened on Tuesday
    // 09:00, resolution continues from the 2 business hours used.
    let events = [
        ev(paris(7, 12, 0), EventKind::Status(CaseStatus::Solved)),
        ev(paris(8, 9, 0), EventKind::Status(CaseStatus::Open)),
    ];
    let clocks = evaluate(&gold(), Some(&cal), created, &events[..1], paris(7, 13, 0));
    assert_eq!(clock(&clocks, Metric::FirstResponse, 0).state, ClockState::Stopped);
    let res = clock(&clocks, Metric::Resolution, 0);
    assert_eq!((res.state, res.elapsed_secs), (ClockState::Fulfilled, 7200));
    let clocks = evaluate(&gold(), Some(&cal), created, &events, paris(8, 9, 0));
    let res = clock(&clocks, Metric::Resolution, 0);
    assert_eq!(res.state, ClockState::Running);
    // 14 business hours from Tuesday 09:00: Tuesday 8h, Wednesday 3h30 before lunch and
    // 2h30 after → 16:00.
    assert_eq!(res.due_at, Some(paris(9, 16, 0)));
}

#[test]
fn calendar_time_targets_policy_matching_and_validation() {
    let mut p = gold();
    p.targets = vec![Target { metric: Metric::FirstResponse, minutes: 90, business_hours: false }];
    // Saturday night: calendar time ignores opening hours.
    let created = paris(12, 23, 0);
    let clocks = evaluate(&p, Some(&calendar()), created, &[], created);
    let first = clock(&clocks, Metric::FirstResponse, 0);
    assert_eq!(first.due_at, Some(created + 90 * 60));
    assert!(first.explanation.contains("90 minutes (calendar time)"), "{}", first.explanation);

    let standard = PolicySpec { name: "Standard".into(), conditions: Conditions::default(), ..gold() };
    let email_only = PolicySpec {
        name: "Email".into(),
        conditions: Conditions { channels: vec![Channel::Email], teams: vec!["t3".into()], ..Conditions::default() },
        ..gold()
    };
    let policies = [gold(), email_only, standard];
    let facts =
        |priority, tier, channel, team: Option<&str>| Facts { priority, tier, channel, team: team.map(str::to_owned) };
    let name = |f: Facts| select(&policies, &f).map(|(i, p)| (i, p.name.clone()));
    assert_eq!(name(facts(Priority::Urgent, Tier::Gold, Channel::Chat, None)), Some((0, "Gold urgent".into())));
    assert_eq!(name(facts(Priority::High, Tier::Gold, Channel::Email, Some("t3"))), Some((1, "Email".into())));
    assert_eq!(name(facts(Priority::High, Tier::Gold, Channel::Email, None)), Some((2, "Standard".into())));
    assert_eq!(select(&policies[..2], &facts(Priority::Low, Tier::Standard, Channel::Web, None)), None);

    assert_eq!(gold().validate(), Ok(()));
    let mut bad = gold();
    bad.targets.push(target(Metric::Resolution, 10));
    assert_eq!(bad.validate(), Err(PolicyError::DuplicateTarget("Gold urgent".into(), "resolution")));
    let mut bad = gold();
    bad.calendar = None;
    assert_eq!(bad.validate(), Err(PolicyError::NoCalendar("Gold urgent".into())));
    let mut bad = gold();
    bad.pause_on = vec![CaseStatus::Open];
    assert_eq!(bad.validate(), Err(PolicyError::PauseStatus("Gold urgent".into(), CaseStatus::Open)));
    let mut bad = gold();
    bad.warning.percent = Some(100);
    assert_eq!(bad.validate(), Err(PolicyError::WarningPercent("Gold urgent".into())));
    let mut bad = gold();
    bad.targets[0].minutes = 0;
    assert_eq!(bad.validate(), Err(PolicyError::ZeroTarget("Gold urgent".into())));
    // The spec round-trips through JSON with defaults filled in.
    let json = r#"{"name":"Basic","calendar":"EU support","targets":[{"metric":"first_response","minutes":60}]}"#;
    let basic: PolicySpec = serde_json::from_str(json).unwrap();
    assert_eq!(basic.pause_on, vec![CaseStatus::Pending, CaseStatus::OnHold]);
    assert_eq!((basic.acknowledge_within_secs, basic.warning.percent), (60, Some(75)));
    assert!(basic.targets[0].business_hours);
}

#[test]
fn warnings_before_the_deadline_fall_in_business_hours() {
    let mut p = gold();
    p.warning = caseflow_sla::Warning { percent: None, minutes_before: Some(60) };
    // Created Friday 17:00: four business hours are Friday 17:00–18:00 and Monday
    // 09:00–12:00; the warning an hour of business time before is Monday 11:00, not an hour
    // of wall time before (Monday 11:00 too) counted back over the weekend from a Monday
    // 09:30 deadline, which would be Sunday night.
    let created = paris(11, 17, 0);
    let first = clock(&evaluate(&p, Some(&calendar()), created, &[], created), Metric::FirstResponse, 0);
    assert_eq!(first.due_at, Some(paris(14, 12, 0)));
    assert_eq!(first.warn_at(), Some(paris(14, 11, 0)));
}

/// Cases found in review: a reopened case solved without a reply gets a response clock again;
/// switching pending → on hold splits the pause; a target used up at closing time is breached
/// at the next business instant, not during a weekend; texts for stopped and late clocks;
/// extreme instants neither panic nor overflow.
#[test]
fn reopen_after_solving_pause_reasons_closed_hours_and_extremes() {
    let cal = calendar();
    let created = paris(7, 10, 0);
    // Solved at 10:05 without a reply; the customer writes at 11:00 and the case reopens.
    let events = [
        ev(paris(7, 10, 5), EventKind::Status(CaseStatus::Solved)),
        ev(paris(7, 11, 0), EventKind::Status(CaseStatus::Open)),
        ev(paris(7, 11, 0), EventKind::CustomerMessage),
    ];
    let clocks = evaluate(&gold(), Some(&cal), created, &events, paris(7, 11, 30));
    let first = clock(&clocks, Metric::FirstResponse, 0);
    assert_eq!(first.state, ClockState::Stopped);
    assert!(
        first.explanation.starts_with("stopped Mon 07 Dec 10:05 Europe/Paris: case solved without a reply"),
        "{}",
        first.explanation
    );
    let next = clock(&clocks, Metric::NextResponse, 1);
    assert_eq!((next.state, next.due_at), (ClockState::Running, Some(paris(7, 13, 30) + 30 * 60)));

    // Pending at 11:00, on hold at 12:00, still on hold at 14:00.
    let events = [
        ev(paris(7, 11, 0), EventKind::Status(CaseStatus::Pending)),
        ev(paris(7, 12, 0), EventKind::Status(CaseStatus::OnHold)),
    ];
    let res = clock(&evaluate(&gold(), Some(&cal), created, &events, paris(7, 14, 0)), Metric::Resolution, 0);
    assert!(res.explanation.starts_with("paused while on_hold since Mon 07 Dec 12:00"), "{}", res.explanation);
    assert!(res.explanation.ends_with("; paused 1h while pending and 2h while on_hold"), "{}", res.explanation);

    // First response due Monday 18:00; pending at exactly 18:00 (on time), the customer
    // answers on Saturday: the breach is Monday 09:00, when business time runs again.
    let created = paris(7, 14, 0);
    let events = [
        ev(paris(7, 18, 0), EventKind::Status(CaseStatus::Pending)),
        ev(paris(12, 10, 0), EventKind::Status(CaseStatus::Open)),
        ev(paris(12, 11, 0), EventKind::Status(CaseStatus::Pending)),
    ];
    let first = clock(&evaluate(&gold(), Some(&cal), created, &events, paris(12, 12, 0)), Metric::FirstResponse, 0);
    assert!(!first.breached && first.due_at.is_none(), "{first:?}");
    let events = [events[0], events[1]];
    let first = clock(&evaluate(&gold(), Some(&cal), created, &events, paris(14, 10, 0)), Metric::FirstResponse, 0);
    assert_eq!((first.breached, first.due_at), (true, Some(paris(14, 9, 0))));

    // Solved after the breach: the stopped text says so. Met late over a weekend: late by
    // business time (Friday 17:59 → Monday 09:01 is 2 business minutes).
    let created = paris(11, 13, 59);
    let events = [ev(paris(14, 9, 1), EventKind::AgentReply)];
    let first = clock(&evaluate(&gold(), Some(&cal), created, &events, paris(14, 10, 0)), Metric::FirstResponse, 0);
    assert_eq!(first.due_at, Some(paris(11, 17, 59)));
    assert!(
        first.explanation.starts_with("met Mon 14 Dec 09:01 Europe/Paris, 2m after its breach"),
        "{}",
        first.explanation
    );
    let events = [ev(paris(14, 9, 1), EventKind::Status(CaseStatus::Closed))];
    let first = clock(&evaluate(&gold(), Some(&cal), created, &events, paris(14, 10, 0)), Metric::FirstResponse, 0);
    assert!(
        first.explanation.starts_with(
            "stopped Mon 14 Dec 09:01 Europe/Paris: case closed without a reply after its breach Fri 11 Dec 17:59"
        ),
        "{}",
        first.explanation
    );

    // Extremes: no panic, no overflow.
    for (created, now) in [(i64::MIN, 0), (i64::MAX - 10, i64::MAX), (0, i64::MAX), (i64::MIN, i64::MAX)] {
        let events = [ev(created.saturating_add(5), EventKind::Status(CaseStatus::Pending))];
        let clocks = evaluate(&gold(), Some(&cal), created, &events, now);
        assert_eq!(clocks.len(), 2);
        let mut wall = gold();
        for t in &mut wall.targets {
            t.business_hours = false;
            t.minutes = u32::MAX;
        }
        evaluate(&wall, None, created, &[], now);
    }
    assert!(!cal.is_open(i64::MAX));
    assert_eq!(cal.between(i64::MIN, i64::MIN + 10), 0);
    assert!(cal.between(0, i64::MAX) > 0);
    // Counting over more than the three-year horizon counts every year.
    let year = cal.between(paris(7, 0, 0), paris(7, 0, 0) + 365 * 86_400);
    assert_eq!(cal.between(paris(7, 0, 0), paris(7, 0, 0) + 4 * 365 * 86_400) / year, 4);
}

fn histories() -> impl Strategy<Value = (i64, Vec<Event>)> {
    let kind = prop_oneof![
        Just(EventKind::CustomerMessage),
        Just(EventKind::AgentReply),
        Just(EventKind::Status(CaseStatus::Open)),
        Just(EventKind::Status(CaseStatus::Pending)),
        Just(EventKind::Status(CaseStatus::OnHold)),
        Just(EventKind::Status(CaseStatus::Solved)),
    ];
    (0i64..(14 * 24 * 60), proptest::collection::vec((0i64..(10 * 24 * 60), kind), 0..12)).prop_map(|(start, evs)| {
        let created = paris(7, 0, 0) + start * 60;
        (created, evs.into_iter().map(|(at, kind)| Event { at: created + at * 60, kind }).collect())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Over random histories: deadlines never before the clock starts; milestones in time
    /// order and before the clock ended; a running clock not yet breached has time left;
    /// and a larger target never gives an earlier deadline.
    #[test]
    fn clocks_are_consistent_and_monotone_in_the_target((created, events) in histories(), extra in 1u32..600, now_after in 0i64..(12 * 24 * 3600)) {
        let cal = calendar();
        let now = created + now_after;
        let p = gold();
        let mut bigger = gold();
        for t in &mut bigger.targets {
            t.minutes += extra;
        }
        let a = evaluate(&p, Some(&cal), created, &events, now);
        let b = evaluate(&bigger, Some(&cal), created, &events, now);
        prop_assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            prop_assert_eq!((x.metric, x.cycle, x.state), (y.metric, y.cycle, y.state));
            if let Some(d) = x.due_at {
                prop_assert!(d >= x.started_at);
            }
            prop_assert!(x.milestones.windows(2).all(|w| w[0].at <= w[1].at));
            prop_assert!(x.milestones.iter().all(|m| m.at >= x.started_at && x.ended_at.is_none_or(|e| m.at < e)));
            if x.state == ClockState::Running && !x.breached {
                prop_assert!(x.elapsed_secs < x.target_secs, "{:?}", x);
            }
            // Monotone: a larger target is reached no earlier (or not at all while the
            // smaller one is).
            match (x.due_at, y.due_at) {
                (Some(dx), Some(dy)) => prop_assert!(dy >= dx),
                (None, Some(_)) => prop_assert!(false, "the larger target is reached, the smaller not: {:?}", x),
                _ => {}
            }
            prop_assert!(!y.breached || x.breached, "a breach of the larger target implies one of the smaller");
        }
    }
}
