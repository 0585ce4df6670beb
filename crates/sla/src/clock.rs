//! SLA clocks of one case, derived from its history: when each target started, what paused
//! it, when it is (or was) due, warned and breached, and a readable explanation.
//!
//! Clocks are not stored state: they are recomputed from the case's events, the policy and
//! the calendar whenever any of them changes (priority raised, policy edited, holiday added),
//! so a change applies the way the policy reads, from the start of the case.

use crate::calendar::{clamp, Calendar, DAY};
use crate::policy::{Metric, PolicySpec, StepOn, Target};
use caseflow_core::CaseStatus;
use chrono::DateTime;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Seconds since 1970-01-01 UTC.
pub type Secs = i64;

/// What happened to a case, as far as its SLA is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "status")]
pub enum EventKind {
    /// A message from the customer (on any channel).
    CustomerMessage,
    /// A public reply from an agent (internal notes do not count).
    AgentReply,
    /// The case's status changed to this.
    Status(CaseStatus),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at: Secs,
    pub kind: EventKind,
}

/// Where a clock stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    Running,
    /// Paused while the case waits on the customer or a third party.
    Paused,
    /// The awaited reply or resolution came.
    Fulfilled,
    /// Ended without fulfilment: the case was solved before any reply.
    Stopped,
}

/// A point on a clock's way: a warning, the breach, or a ladder step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind", content = "step")]
pub enum MilestoneKind {
    Warning,
    Breach,
    /// Ladder step (index into the policy's ladder).
    Step(u16),
}

/// A milestone and the instant the clock reaches (or reached) it. Only milestones the clock
/// reaches while running are listed: a fulfilled clock lists those it passed before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milestone {
    pub kind: MilestoneKind,
    pub at: Secs,
}

/// One SLA clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    pub metric: Metric,
    /// 0 for first response and resolution; the n-th reply cycle for next response.
    pub cycle: u32,
    pub started_at: Secs,
    pub state: ClockState,
    pub target_secs: i64,
    pub business_hours: bool,
    /// Time counted so far (business seconds for a business-hours target).
    pub elapsed_secs: i64,
    /// Wall-clock seconds spent paused.
    pub paused_secs: i64,
    /// When the target is (running) or was (breached) reached; none while paused before it
    /// or when fulfilled in time.
    pub due_at: Option<Secs>,
    pub breached: bool,
    /// When it was fulfilled or stopped.
    pub ended_at: Option<Secs>,
    /// Warnings, breach and ladder steps with their instants, in time order.
    pub milestones: Vec<Milestone>,
    pub explanation: String,
}

impl Clock {
    /// The warning instant, if the clock reaches it while running.
    pub fn warn_at(&self) -> Option<Secs> {
        self.milestones.iter().find(|m| m.kind == MilestoneKind::Warning).map(|m| m.at)
    }
}

/// How time is counted for a target.
#[derive(Clone, Copy)]
enum Mode<'a> {
    Wall,
    Business(&'a Calendar),
}

impl Mode<'_> {
    /// Walks a run `[from, to)` (no `to`: still running) to find when the sorted `thresholds`
    /// (time still to count from `from`) are reached: a threshold is reached at the instant
    /// its time has been counted, if that is before `to` (at `to` the clock no longer runs).
    /// Returns the time counted in the run (0 for a run without end).
    fn advance(self, from: Secs, to: Option<Secs>, thresholds: &[i64], reached: &mut [Option<Secs>]) -> i64 {
        let mut next = (!thresholds.is_empty()).then_some(0);
        match self {
            Mode::Wall => {
                // Thresholds already met (zero or less left) are reached at `from`, if the
                // clock runs at all.
                for (i, &t) in thresholds.iter().enumerate() {
                    if t <= 0 && to.is_none_or(|e| from < e) && reached[i].is_none() {
                        reached[i] = Some(from);
                    }
                }
                next = thresholds.iter().position(|&t| t > 0);
                if let Some(mut i) = next {
                    while let Some(&t) = thresholds.get(i) {
                        let at = from + t;
                        if to.is_some_and(|e| at >= e) {
                            break;
                        }
                        reached[i] = Some(at);
                        i += 1;
                    }
                }
                to.map_or(0, |e| (e - from).max(0))
            }
            Mode::Business(cal) => {
                let mut counted = 0;
                cal.walk(from, |a, b| {
                    let b = match to {
                        Some(e) if a >= e => return false,
                        Some(e) => b.min(e),
                        None => b,
                    };
                    while let Some(i) = next {
                        let Some(&t) = thresholds.get(i) else {
                            next = None;
                            break;
                        };
                        // Zero or less left: reached at the first business instant of the run.
                        let at = a + (t - counted).max(0);
                        if at <= b && to.is_none_or(|e| at < e) {
                            reached[i] = Some(at);
                            next = Some(i + 1).filter(|&j| j < thresholds.len());
                        } else {
                            break;
                        }
                    }
                    counted += b - a;
                    // Open-ended: stop once every threshold is reached.
                    to.is_some() || next.is_some()
                });
                if to.is_some() {
                    counted
                } else {
                    0
                }
            }
        }
    }

    fn between(self, from: Secs, to: Secs) -> i64 {
        match self {
            Mode::Wall => (to - from).max(0),
            Mode::Business(cal) => cal.between(from, to),
        }
    }
}

/// A run of a clock: running from `start` until `end` (none: still running).
type Run = (Secs, Option<Secs>);

/// The raw course of one clock over the case's history.
struct Course {
    metric: Metric,
    cycle: u32,
    started_at: Secs,
    runs: Vec<Run>,
    /// Wall seconds paused, per pausing status (pending, on hold).
    paused: [(CaseStatus, i64); 2],
    /// Paused now, since when and why.
    paused_now: Option<(Secs, CaseStatus)>,
    ended: Option<(Secs, ClockState)>,
    /// For a stopped clock: the status that stopped it.
    stopped_by: Option<CaseStatus>,
}

impl Course {
    fn new(metric: Metric, cycle: u32, at: Secs) -> Self {
        Course {
            metric,
            cycle,
            started_at: at,
            runs: Vec::new(),
            paused: [(CaseStatus::Pending, 0), (CaseStatus::OnHold, 0)],
            paused_now: None,
            ended: None,
            stopped_by: None,
        }
    }

    fn running(&self) -> bool {
        self.runs.last().is_some_and(|r| r.1.is_none())
    }

    fn start_run(&mut self, at: Secs) {
        if !self.running() {
            self.runs.push((at, None));
        }
    }

    fn stop_run(&mut self, at: Secs) {
        if let Some(r) = self.runs.last_mut() {
            if r.1.is_none() {
                r.1 = Some(at.max(r.0));
            }
        }
    }

    fn pause(&mut self, at: Secs, why: CaseStatus) {
        self.stop_run(at);
        match self.paused_now {
            None => self.paused_now = Some((at, why)),
            // Pending to on hold (or back): the time so far counts for the old reason.
            Some((since, was)) if was != why => {
                if let Some(p) = self.paused.iter_mut().find(|p| p.0 == was) {
                    p.1 += (at - since).max(0);
                }
                self.paused_now = Some((at, why));
            }
            Some(_) => {}
        }
    }

    fn resume(&mut self, at: Secs) {
        if let Some((since, why)) = self.paused_now.take() {
            if let Some(p) = self.paused.iter_mut().find(|p| p.0 == why) {
                p.1 += (at - since).max(0);
            }
        }
        self.start_run(at);
    }

    fn end(&mut self, at: Secs, how: ClockState) {
        self.stop_run(at);
        if let Some((since, why)) = self.paused_now.take() {
            if let Some(p) = self.paused.iter_mut().find(|p| p.0 == why) {
                p.1 += (at - since).max(0);
            }
        }
        self.ended = Some((at, how));
    }

    /// Sets the clock running or paused after a status change.
    fn follow(&mut self, at: Secs, status: CaseStatus, pause_on: &[CaseStatus]) {
        if pause_on.contains(&status) {
            self.pause(at, status);
        } else {
            self.resume(at);
        }
    }
}

/// Replays the case's history into the courses of its clocks (before any target is applied).
fn courses(policy: &PolicySpec, created_at: Secs, events: &[Event], now: Secs) -> Vec<Course> {
    let pause_on = &policy.pause_on;
    let mut status = CaseStatus::New;
    let mut first = Some(Course::new(Metric::FirstResponse, 0, created_at));
    let mut resolution = Course::new(Metric::Resolution, 0, created_at);
    first.iter_mut().for_each(|c| c.start_run(created_at));
    resolution.start_run(created_at);
    let mut done: Vec<Course> = Vec::new();
    let mut next: Option<Course> = None;
    let mut cycles = 0u32;
    let mut order: Vec<&Event> = events.iter().filter(|e| e.at >= created_at && e.at <= now).collect();
    order.sort_by_key(|e| e.at);
    for e in order {
        let at = e.at;
        match e.kind {
            EventKind::CustomerMessage => {
                // A reply cycle opens when no response clock runs: after a reply, or after
                // the first-response clock stopped (solved without a reply, then reopened).
                if first.is_none() && next.is_none() && status != CaseStatus::Closed {
                    cycles += 1;
                    let mut c = Course::new(Metric::NextResponse, cycles, at);
                    c.follow(at, status, pause_on);
                    next = Some(c);
                }
            }
            EventKind::AgentReply => {
                if let Some(mut c) = first.take() {
                    c.end(at, ClockState::Fulfilled);
                    done.push(c);
                }
                if let Some(mut c) = next.take() {
                    c.end(at, ClockState::Fulfilled);
                    done.push(c);
                }
            }
            EventKind::Status(s) => {
                status = s;
                if matches!(s, CaseStatus::Solved | CaseStatus::Closed) {
                    // Solving ends the response clocks without a reply: stopped, not met.
                    for c in [first.take(), next.take()].into_iter().flatten() {
                        let mut c = c;
                        c.end(at, ClockState::Stopped);
                        c.stopped_by = Some(s);
                        done.push(c);
                    }
                    if resolution.ended.is_none() {
                        resolution.end(at, ClockState::Fulfilled);
                    }
                } else {
                    // Reopened: resolution continues with the time already used.
                    resolution.ended = None;
                    for c in first.iter_mut().chain(next.iter_mut()).chain(std::iter::once(&mut resolution)) {
                        c.follow(at, s, pause_on);
                    }
                }
            }
        }
    }
    done.extend(first);
    done.extend(next);
    done.push(resolution);
    done
}

/// The thresholds of one clock, sorted, with what each one is.
fn thresholds(policy: &PolicySpec, target: &Target) -> Vec<(i64, MilestoneKind)> {
    let t = i64::from(target.minutes) * 60;
    let mut out = Vec::with_capacity(2 + policy.ladder.len());
    let by_percent = policy.warning.percent.map(|p| t * i64::from(p) / 100);
    let by_minutes = policy.warning.minutes_before.map(|m| (t - i64::from(m) * 60).max(0));
    if let Some(w) = by_percent.into_iter().chain(by_minutes).min() {
        out.push((w, MilestoneKind::Warning));
    }
    out.push((t, MilestoneKind::Breach));
    for (i, step) in policy.ladder.iter().enumerate() {
        if !step.metrics.is_empty() && !step.metrics.contains(&target.metric) {
            continue;
        }
        let Some(base) = (match step.on {
            StepOn::Warning => out.iter().find(|o| o.1 == MilestoneKind::Warning).map(|o| o.0),
            StepOn::Breach => Some(t),
        }) else {
            continue;
        };
        out.push((
            base + i64::from(step.after_minutes) * 60,
            MilestoneKind::Step(u16::try_from(i).unwrap_or(u16::MAX)),
        ));
    }
    out.sort();
    out
}

/// Formats a duration of seconds as `2d 3h`, `1h20m`, `45m` or `30s`.
pub fn human(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / DAY, s % DAY / 3_600, s % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h{m:02}m"),
        (d, 0, 0) => format!("{d}d"),
        (d, h, 0) => format!("{d}d {h}h"),
        (d, h, m) => format!("{d}d {h}h{m:02}m"),
    }
}

/// A target in words: "4 business hours", "90 business minutes", "2 hours (calendar time)".
pub fn target_words(t: &Target) -> String {
    let unit = |n: u32, one: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {one}s") };
    let amount = if t.minutes % 60 == 0 {
        unit(t.minutes / 60, if t.business_hours { "business hour" } else { "hour" })
    } else {
        unit(t.minutes, if t.business_hours { "business minute" } else { "minute" })
    };
    if t.business_hours {
        amount
    } else {
        format!("{amount} (calendar time)")
    }
}

fn local(tz: Tz, at: Secs) -> String {
    match DateTime::from_timestamp(at, 0) {
        Some(t) => format!("{} {}", t.with_timezone(&tz).format("%a %d %b %H:%M"), tz.name()),
        None => at.to_string(),
    }
}

/// The SLA clocks of one case under `policy`, as of `now`. `calendar` is the policy's
/// calendar (none: targets in business hours count around the clock in UTC). Events before
/// `created_at` or after `now` are ignored; events at one instant apply in the order given.
pub fn evaluate(
    policy: &PolicySpec,
    calendar: Option<&Calendar>,
    created_at: Secs,
    events: &[Event],
    now: Secs,
) -> Vec<Clock> {
    let tz = calendar.map_or(Tz::UTC, Calendar::time_zone);
    // Instants are clamped to a range no arithmetic below can overflow.
    let (created_at, now) = (clamp(created_at), clamp(now));
    let events: Vec<Event> = events.iter().map(|e| Event { at: clamp(e.at), kind: e.kind }).collect();
    let mut clocks = Vec::new();
    for course in courses(policy, created_at, &events, now) {
        let Some(target) = policy.target(course.metric) else { continue };
        let mode = match (target.business_hours, calendar) {
            (true, Some(cal)) => Mode::Business(cal),
            _ => Mode::Wall,
        };
        clocks.push(measure(policy, target, mode, tz, calendar, &course, now));
    }
    clocks
}

fn measure(
    policy: &PolicySpec,
    target: &Target,
    mode: Mode<'_>,
    tz: Tz,
    calendar: Option<&Calendar>,
    course: &Course,
    now: Secs,
) -> Clock {
    let marks = thresholds(policy, target);
    let mut reached: Vec<Option<Secs>> = vec![None; marks.len()];
    // Time counted in the runs that ended, and in all runs up to now.
    let (mut used, mut elapsed) = (0i64, 0i64);
    for &(start, end) in &course.runs {
        let pending: Vec<usize> = (0..marks.len()).filter(|&i| reached[i].is_none()).collect();
        let goals: Vec<i64> = pending.iter().map(|&i| marks[i].0 - used).collect();
        let mut got = vec![None; goals.len()];
        let counted = mode.advance(start, end, &goals, &mut got);
        for (k, &i) in pending.iter().enumerate() {
            reached[i] = got[k];
        }
        match end {
            Some(_) => {
                used += counted;
                elapsed += counted;
            }
            None => elapsed += mode.between(start, now.max(start)),
        }
    }
    let breach_at = marks.iter().zip(&reached).find(|(m, _)| m.1 == MilestoneKind::Breach).and_then(|(_, r)| *r);
    let state = match course.ended {
        Some((_, how)) => how,
        None if course.running() => ClockState::Running,
        None => ClockState::Paused,
    };
    let milestones = marks.iter().zip(&reached).filter_map(|(m, r)| r.map(|at| Milestone { kind: m.1, at })).collect();
    let paused_secs =
        course.paused.iter().map(|p| p.1).sum::<i64>() + course.paused_now.map_or(0, |(since, _)| (now - since).max(0));
    let mut clock = Clock {
        metric: course.metric,
        cycle: course.cycle,
        started_at: course.started_at,
        state,
        target_secs: i64::from(target.minutes) * 60,
        business_hours: target.business_hours && calendar.is_some(),
        elapsed_secs: elapsed,
        paused_secs,
        due_at: breach_at,
        breached: breach_at.is_some_and(|b| b <= now),
        ended_at: course.ended.map(|e| e.0),
        milestones,
        explanation: String::new(),
    };
    clock.explanation = explain(policy, target, tz, calendar, course, &clock, now);
    clock
}

fn explain(
    policy: &PolicySpec,
    target: &Target,
    tz: Tz,
    calendar: Option<&Calendar>,
    course: &Course,
    c: &Clock,
    now: Secs,
) -> String {
    let mut s = match (c.state, c.due_at) {
        (ClockState::Running, Some(due)) if due <= now => format!("breached {}", local(tz, due)),
        (ClockState::Running, Some(due)) => format!("due {}", local(tz, due)),
        (ClockState::Running, None) => {
            "running; the deadline is more than three years of calendar time away".to_owned()
        }
        (ClockState::Paused, _) => {
            let since =
                course.paused_now.map_or(String::new(), |(at, why)| format!(" while {why} since {}", local(tz, at)));
            let rest = if c.breached {
                format!(", breached {}", c.due_at.map_or(String::new(), |d| local(tz, d)))
            } else {
                format!(", {} left", human(c.target_secs - c.elapsed_secs))
            };
            format!("paused{since}{rest}")
        }
        (ClockState::Fulfilled, due) => {
            let at = c.ended_at.map_or(String::new(), |e| local(tz, e));
            match (due, c.ended_at) {
                (Some(d), Some(e)) => {
                    // Late by the time the target counts (business time for business hours).
                    let late = match (target.business_hours, calendar) {
                        (true, Some(cal)) => cal.between(d, e),
                        _ => e - d,
                    };
                    format!("met {at}, {} after its breach", human(late))
                }
                _ => format!("met {at} with {} of {} used", human(c.elapsed_secs), human(c.target_secs)),
            }
        }
        (ClockState::Stopped, due) => {
            let at = c.ended_at.map_or(String::new(), |e| local(tz, e));
            let why = course.stopped_by.unwrap_or(CaseStatus::Solved);
            let breach = match due {
                Some(d) if c.breached => format!(" after its breach {}", local(tz, d)),
                _ => String::new(),
            };
            format!("stopped {at}: case {why} without a reply{breach}")
        }
    };
    let _ = write!(s, ": {}, policy {:?}, {}", c.metric.label(), policy.name, target_words(target));
    match (target.business_hours, calendar) {
        (true, Some(cal)) => {
            let _ = write!(s, ", calendar {:?}", cal.name());
        }
        (true, None) => s.push_str(", no calendar: around the clock"),
        _ => {}
    }
    let paused: Vec<String> = course
        .paused
        .iter()
        .map(|&(why, secs)| {
            let now_part = course.paused_now.filter(|p| p.1 == why).map_or(0, |(since, _)| (now - since).max(0));
            (why, secs + now_part)
        })
        .filter(|p| p.1 > 0)
        .map(|(why, secs)| format!("{} while {why}", human(secs)))
        .collect();
    if !paused.is_empty() {
        let _ = write!(s, "; paused {}", paused.join(" and "));
    }
    s
}
