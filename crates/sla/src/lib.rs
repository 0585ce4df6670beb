//! Caseflow's SLA engine. Pure: time and data come in as arguments (no clock, no I/O), so
//! every deadline is reproducible, property-tested and benchmarked directly.
//!
//! - [`calendar`]: business calendars in an IANA time zone with split shifts, ranges past
//!   midnight, holidays (one-off and yearly) and closures; business time added and counted
//!   correctly across daylight-saving changes.
//! - [`policy`]: policies matched in order by priority, customer tier, channel and team, with
//!   first-response, next-response and resolution targets in business or calendar time, a
//!   warning threshold, pausing statuses, the acknowledgement window and an escalation
//!   ladder.
//! - [`clock`]: a case's clocks derived from its history (messages, replies, status changes):
//!   paused while pending or on hold, stopped when fulfilled, next response per reply cycle;
//!   each with its deadline, milestones (warning, breach, ladder steps: the scheduler's
//!   work list) and a readable explanation.

pub mod calendar;
pub mod clock;
pub mod policy;

pub use calendar::{Calendar, CalendarError, CalendarSpec, Closure, Day, Holiday, Opening};
pub use chrono_tz::Tz;
pub use clock::{evaluate, Clock, ClockState, Event, EventKind, Milestone, MilestoneKind, Secs};
pub use policy::{select, Action, Conditions, Facts, Metric, PolicyError, PolicySpec, Step, StepOn, Target, Warning};
