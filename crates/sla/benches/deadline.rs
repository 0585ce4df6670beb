//! Deadline computation (issue: SLA engine, target ≤ 2 µs median): a split-shift calendar
//! in Europe/Paris with a year of public holidays, a yearly holiday and closures; deadlines of
//! 4 and 16 business hours from starts spread over two years (daylight-saving changes
//! included); then a whole case's clocks with explanations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use caseflow_core::CaseStatus;
use caseflow_sla::policy::{Action, Conditions, Metric, PolicySpec, Step, StepOn, Target, Warning};
use caseflow_sla::{evaluate, Calendar, CalendarSpec, Closure, Day, Event, EventKind, Holiday, Opening};
use chrono::{DateTime, NaiveDate};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::time::Duration;

fn calendar() -> Calendar {
    let weekdays = vec![Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri];
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let mut holidays: Vec<Holiday> =
        [(1, 1), (4, 6), (5, 1), (5, 8), (5, 14), (5, 25), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
            .iter()
            .flat_map(|&(m, d)| {
                [2026, 2027].map(|y| Holiday { date: date(y, m, d), name: String::new(), yearly: false })
            })
            .collect();
    holidays.push(Holiday { date: date(2000, 12, 26), name: "Boxing Day".into(), yearly: true });
    let closure = |y, m, d, hours: u32| Closure {
        from: DateTime::from_timestamp(date(y, m, d).and_hms_opt(8, 0, 0).unwrap().and_utc().timestamp(), 0).unwrap(),
        to: DateTime::from_timestamp(date(y, m, d).and_hms_opt(8 + hours, 0, 0).unwrap().and_utc().timestamp(), 0)
            .unwrap(),
        reason: String::new(),
    };
    Calendar::from_spec(&CalendarSpec {
        name: "EU support".into(),
        time_zone: "Europe/Paris".into(),
        hours: vec![
            Opening { days: weekdays.clone(), from: "08:30".into(), to: "12:30".into() },
            Opening { days: weekdays, from: "13:30".into(), to: "18:00".into() },
            Opening { days: vec![Day::Sat], from: "10:00".into(), to: "14:00".into() },
        ],
        holidays,
        closures: vec![closure(2026, 3, 2, 3), closure(2026, 9, 14, 4), closure(2027, 2, 1, 2)],
    })
    .unwrap()
}

/// Starts spread over 2026–2027 (every 7,919 seconds: all hours of all days, DST included).
fn starts() -> Vec<i64> {
    let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    (0..8_000).map(|i| base + i * 7_919).collect()
}

fn deadlines(c: &mut Criterion) {
    let cal = calendar();
    let starts = starts();
    let mut group = c.benchmark_group("deadline");
    group.sample_size(30).measurement_time(Duration::from_secs(4));
    for hours in [4i64, 16] {
        group.bench_function(BenchmarkId::new("split_shift_holidays", format!("{hours}h")), |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) % starts.len();
                black_box(cal.add(black_box(starts[i]), hours * 3_600))
            })
        });
    }
    group.finish();

    let policy = PolicySpec {
        name: "Gold urgent".into(),
        conditions: Conditions::default(),
        calendar: Some("EU support".into()),
        targets: vec![
            Target { metric: Metric::FirstResponse, minutes: 240, business_hours: true },
            Target { metric: Metric::NextResponse, minutes: 120, business_hours: true },
            Target { metric: Metric::Resolution, minutes: 960, business_hours: true },
        ],
        warning: Warning::default(),
        pause_on: vec![CaseStatus::Pending, CaseStatus::OnHold],
        acknowledge_within_secs: 60,
        ladder: vec![
            Step { on: StepOn::Warning, after_minutes: 0, action: Action::NotifyAssignee, metrics: vec![] },
            Step { on: StepOn::Breach, after_minutes: 0, action: Action::AlertSupervisors, metrics: vec![] },
            Step { on: StepOn::Breach, after_minutes: 60, action: Action::Reassign, metrics: vec![] },
        ],
    };
    let mut group = c.benchmark_group("case_clocks");
    group.sample_size(30).measurement_time(Duration::from_secs(4));
    group.bench_function("reply_pending_follow_up", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % starts.len();
            let t = starts[i];
            let events = [
                Event { at: t + 1_800, kind: EventKind::AgentReply },
                Event { at: t + 1_800, kind: EventKind::Status(CaseStatus::Pending) },
                Event { at: t + 9_000, kind: EventKind::Status(CaseStatus::Open) },
                Event { at: t + 9_000, kind: EventKind::CustomerMessage },
            ];
            black_box(evaluate(&policy, Some(&cal), t, &events, t + 10_000))
        })
    });
    group.finish();
}

criterion_group!(benches, deadlines);
criterion_main!(benches);
