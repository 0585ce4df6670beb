//! Business calendars: opening hours per weekday in an IANA time zone (several ranges a day:
//! split shifts; ranges past midnight), holidays (one-off or every year) and one-off closures.
//!
//! **What counts as open.** An instant is business time when the wall clock of the calendar's
//! zone shows a time inside one of that local day's ranges, the local date is not a holiday
//! and no closure covers the instant. This is how people read opening hours, and it settles
//! the two daylight-saving cases without special rules: on the spring-forward day the skipped
//! hour never shows on the clock, so a 00:00–06:00 shift is five real hours; on the fall-back
//! day the repeated hour shows twice, so a 00:00–06:00 shift is seven. A 09:00–17:00 day is
//! eight real hours on both (the clocks change at night).
//!
//! **How it is computed.** Time is walked in periods of constant UTC offset (found by probing
//! the zone a week ahead and bisecting to the second when the offset differs); inside one,
//! local time is UTC plus the offset, so each local day's ranges map to UTC intervals by one
//! subtraction. Holidays are looked up by local day number, closures are subtracted from the
//! intervals in one forward pass. A deadline a few business hours ahead costs one or two zone
//! lookups, whatever the zone (measured in `benches/deadline.rs`).
//!
//! Assumption: a zone does not change its offset twice within [`PROBE`] (6 days). Over every
//! zone of the IANA database from 1970 to 2061, scanned in half-hour steps when the probe was
//! chosen, the closest two changes are 6.96 days apart (Brazil's north-east in 2000, Gaza and
//! Hebron in 2040, where Ramadan meets the end of summer time); a test re-checks those zones.

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Seconds in a day of wall-clock time.
pub const DAY: i64 = 86_400;
/// How far ahead the zone is probed for an offset change.
pub const PROBE: i64 = 6 * DAY;
/// How far the walk looks for business time before it gives up (a calendar closed for three
/// years has no deadline).
pub const HORIZON: i64 = 3 * 366 * DAY;
/// Instants are clamped to ±10^11 seconds (years −1200 to 5100): far inside what chrono
/// represents, so no input can overflow the arithmetic.
pub const LIMIT: i64 = 100_000_000_000;

/// `t` within [`LIMIT`].
pub fn clamp(t: i64) -> i64 {
    t.clamp(-LIMIT, LIMIT)
}

/// Days from 0001-01-01 (day 1 of the proleptic Gregorian calendar) to 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i64 = 719_163;

/// A day of the week, as written in calendar specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    /// Every day, Monday first.
    pub const ALL: [Day; 7] = [Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri, Day::Sat, Day::Sun];

    fn index(self) -> usize {
        self as usize
    }
}

/// Opening hours on some days: `from`–`to` as `HH:MM` local time. `to` may be `24:00` (the
/// end of the day), or earlier than `from` for a range that runs past midnight into the next
/// day (`22:00`–`06:00`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Opening {
    pub days: Vec<Day>,
    pub from: String,
    pub to: String,
}

/// A local date the calendar is closed all day; `yearly` repeats it on the same month and day
/// every year (a 29 February holiday then only falls in leap years).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Holiday {
    pub date: NaiveDate,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub yearly: bool,
}

/// A one-off closure: closed from `from` until `to` (instants, any zone in RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Closure {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    #[serde(default)]
    pub reason: String,
}

/// A calendar as configured: what the API and the configuration file hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CalendarSpec {
    pub name: String,
    /// IANA time zone name, e.g. `Europe/Paris`.
    pub time_zone: String,
    pub hours: Vec<Opening>,
    #[serde(default)]
    pub holidays: Vec<Holiday>,
    #[serde(default)]
    pub closures: Vec<Closure>,
}

/// Why a calendar spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("unknown time zone {0:?} (an IANA name such as Europe/Paris is expected)")]
    UnknownTimeZone(String),
    #[error("invalid time {0:?} (HH:MM from 00:00 to 24:00 is expected)")]
    BadTime(String),
    #[error("an opening from {0} to {0} is empty")]
    EmptyOpening(String),
    #[error("an opening names no days")]
    NoDays,
    #[error("the calendar has no opening hours")]
    NeverOpen,
    #[error("closure {0:?} ends before it starts")]
    ClosureOrder(String),
}

/// A validated calendar, ready for deadline computations.
#[derive(Debug, Clone)]
pub struct Calendar {
    name: String,
    tz: Tz,
    /// Per weekday (Monday first): open ranges in seconds of the local day, `[start, end)`,
    /// sorted and disjoint, `end <= DAY`.
    week: [Vec<(i64, i64)>; 7],
    /// Holidays as local day numbers (days since 1970-01-01), sorted.
    holidays: Vec<i64>,
    /// Yearly holidays as (month, day).
    yearly: Vec<(u32, u32)>,
    /// Closures as UTC seconds `[start, end)`, sorted and merged.
    closures: Vec<(i64, i64)>,
}

/// Parses `HH:MM` (or `24:00`) into seconds of the day.
pub fn parse_time(text: &str) -> Result<i64, CalendarError> {
    let bad = || CalendarError::BadTime(text.chars().take(16).collect());
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 || !(h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())) {
        return Err(bad());
    }
    let h: i64 = h.parse().map_err(|_| bad())?;
    let m: i64 = m.parse().map_err(|_| bad())?;
    if !(0..=24).contains(&h) || !(0..60).contains(&m) || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 3_600 + m * 60)
}

/// Sorts and merges overlapping or touching ranges.
fn merge(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

impl Calendar {
    /// Validates a spec: a known zone, well-formed times, at least one opening.
    pub fn from_spec(spec: &CalendarSpec) -> Result<Self, CalendarError> {
        let tz: Tz = spec.time_zone.parse().map_err(|_| CalendarError::UnknownTimeZone(spec.time_zone.clone()))?;
        let mut week: [Vec<(i64, i64)>; 7] = Default::default();
        for o in &spec.hours {
            let (from, to) = (parse_time(&o.from)?, parse_time(&o.to)?);
            if o.days.is_empty() {
                return Err(CalendarError::NoDays);
            }
            if from == to || (from == DAY && to == 0) {
                return Err(CalendarError::EmptyOpening(o.from.clone()));
            }
            for d in &o.days {
                let i = d.index();
                if from < to {
                    week[i].push((from, to));
                } else {
                    // Past midnight: the rest of this day, then the start of the next.
                    if from < DAY {
                        week[i].push((from, DAY));
                    }
                    if to > 0 {
                        week[(i + 1) % 7].push((0, to));
                    }
                }
            }
        }
        let week = week.map(merge);
        if week.iter().all(Vec::is_empty) {
            return Err(CalendarError::NeverOpen);
        }
        let mut holidays = Vec::new();
        let mut yearly = Vec::new();
        for h in &spec.holidays {
            if h.yearly {
                yearly.push((h.date.month(), h.date.day()));
            } else {
                holidays.push(i64::from(h.date.num_days_from_ce()) - UNIX_EPOCH_CE_DAYS);
            }
        }
        holidays.sort_unstable();
        holidays.dedup();
        yearly.sort_unstable();
        yearly.dedup();
        let mut closures = Vec::new();
        for c in &spec.closures {
            if c.to < c.from {
                return Err(CalendarError::ClosureOrder(c.reason.clone()));
            }
            closures.push((c.from.timestamp(), c.to.timestamp()));
        }
        Ok(Calendar { name: spec.name.clone(), tz, week, holidays, yearly, closures: merge(closures) })
    }

    /// Open every hour of every day in UTC: calendar time, for targets not in business hours.
    pub fn always() -> Self {
        Calendar {
            name: "24/7".to_owned(),
            tz: Tz::UTC,
            week: std::array::from_fn(|_| vec![(0, DAY)]),
            holidays: Vec::new(),
            yearly: Vec::new(),
            closures: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// Whether this calendar is open around the clock with no exceptions (then business time
    /// is wall time and the walk is skipped).
    fn is_always(&self) -> bool {
        self.closures.is_empty()
            && self.holidays.is_empty()
            && self.yearly.is_empty()
            && self.week.iter().all(|d| d.as_slice() == [(0, DAY)])
    }

    /// The zone's offset from UTC at UTC instant `u`, in seconds.
    fn offset(&self, u: i64) -> i64 {
        let Some(at) = DateTime::from_timestamp(u, 0) else { return 0 };
        i64::from(self.tz.offset_from_utc_datetime(&at.naive_utc()).fix().local_minus_utc())
    }

    /// The end of the constant-offset period that contains `u` (whose offset is `o`), or a
    /// point at most [`PROBE`] later up to which the offset is still `o`.
    fn period_end(&self, u: i64, o: i64) -> i64 {
        let probe = u.saturating_add(PROBE);
        if self.offset(probe) == o {
            return probe;
        }
        // The first second whose offset differs, in (u, probe].
        let (mut lo, mut hi) = (u, probe);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.offset(mid) == o {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }

    fn is_holiday(&self, day: i64) -> bool {
        if self.holidays.binary_search(&day).is_ok() {
            return true;
        }
        if self.yearly.is_empty() {
            return false;
        }
        let ce = i32::try_from(day + UNIX_EPOCH_CE_DAYS).ok();
        match ce.and_then(NaiveDate::from_num_days_from_ce_opt) {
            Some(d) => self.yearly.binary_search(&(d.month(), d.day())).is_ok(),
            None => false,
        }
    }

    /// Calls `f` with each open interval `[start, end)` (UTC seconds) at or after `from`, in
    /// increasing order, until `f` returns `false` (then returns `true`) or the horizon is
    /// passed (then returns `false`).
    pub fn walk(&self, from: i64, f: impl FnMut(i64, i64) -> bool) -> bool {
        let from = clamp(from);
        self.walk_until(from, from + HORIZON, f)
    }

    /// [`Calendar::walk`] up to `until` instead of the horizon.
    fn walk_until(&self, from: i64, until: i64, mut f: impl FnMut(i64, i64) -> bool) -> bool {
        let (from, horizon) = (clamp(from), clamp(until));
        let mut ci = self.closures.partition_point(|c| c.1 <= from);
        let mut u = from;
        while u < horizon {
            let o = self.offset(u);
            let end = self.period_end(u, o);
            // Local days that overlap [u, end) under offset o.
            let first = (u + o).div_euclid(DAY);
            let last = (end - 1 + o).div_euclid(DAY);
            for day in first..=last {
                let ranges = &self.week[usize::try_from((day + 3).rem_euclid(7)).unwrap_or(0)];
                if ranges.is_empty() || self.is_holiday(day) {
                    continue;
                }
                let base = day * DAY - o;
                for &(s, e) in ranges {
                    let (mut a, b) = ((base + s).max(u), (base + e).min(end));
                    if a >= b {
                        continue;
                    }
                    // Subtract closures (sorted; intervals come in order, so `ci` only grows).
                    while let Some(&(cs, ce)) = self.closures.get(ci) {
                        if cs >= b {
                            break;
                        }
                        if cs > a && !f(a, cs) {
                            return true;
                        }
                        a = a.max(ce);
                        if ce <= b {
                            ci += 1;
                        } else {
                            break;
                        }
                    }
                    if a < b && !f(a, b) {
                        return true;
                    }
                }
            }
            u = end;
        }
        false
    }

    /// The instant at which `secs` seconds of business time have passed since `from`:
    /// `from` itself for zero; otherwise inside an open interval or at its end (a deadline
    /// reached at closing time is closing time, not the next opening). `None` when the
    /// calendar has no business time within the horizon.
    pub fn add(&self, from: i64, secs: i64) -> Option<i64> {
        let from = clamp(from);
        if secs <= 0 {
            return Some(from);
        }
        if self.is_always() {
            return Some(from.saturating_add(secs));
        }
        let mut left = secs;
        let mut at = None;
        self.walk(from, |a, b| {
            if b - a >= left {
                at = Some(a + left);
                false
            } else {
                left -= b - a;
                true
            }
        });
        at
    }

    /// Business seconds in `[from, to)`.
    pub fn between(&self, from: i64, to: i64) -> i64 {
        let (from, to) = (clamp(from), clamp(to));
        if to <= from {
            return 0;
        }
        if self.is_always() {
            return to - from;
        }
        let mut total = 0;
        self.walk_until(from, to, |a, b| {
            if a >= to {
                return false;
            }
            total += b.min(to) - a;
            b < to
        });
        total
    }

    /// Whether `at` is business time.
    pub fn is_open(&self, at: i64) -> bool {
        let at = clamp(at);
        self.between(at, at + 1) == 1
    }

    /// The next instant at or after `at` that is business time.
    pub fn next_open(&self, at: i64) -> Option<i64> {
        let mut found = None;
        self.walk(at, |a, _| {
            found = Some(a);
            false
        });
        found
    }

    /// `at` as local wall time in the calendar's zone (for explanations).
    pub fn local(&self, at: i64) -> Option<DateTime<Tz>> {
        DateTime::from_timestamp(at, 0).map(|t| t.with_timezone(&self.tz))
    }
}
