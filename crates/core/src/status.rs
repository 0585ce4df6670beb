//! The case lifecycle: new → open → pending/on hold → solved → closed.
//!
//! ```text
//!            ┌──────────────── customer reply ───────────────┐
//!            ▼                                               │
//!  new ──► open ◄──► pending ──► solved ──► closed (terminal) │
//!   │        ▲  ◄──► on_hold ──►   ▲ │                        │
//!   └────────┴─────────────────────┘ └───────────────────────┘
//! ```
//! A customer reply reopens a pending or solved case; on a closed case it must start a new
//! case linked to the old one (the caller does that), so the machine refuses it.

use crate::enums::string_enum;
use serde::{Deserialize, Serialize};

string_enum!(
    /// Where a case is in its lifecycle.
    CaseStatus, "status" {
        /// Created, nobody has acted on it yet.
        New => "new",
        /// Waiting on us.
        Open => "open",
        /// Waiting on the customer; SLA clocks pause.
        Pending => "pending",
        /// Waiting on a third party; SLA clocks pause.
        OnHold => "on_hold",
        /// We believe it is resolved; a customer reply reopens it.
        Solved => "solved",
        /// Archived; immutable. A reply starts a new, linked case.
        Closed => "closed",
    }
);

/// A requested status change is not allowed from the current status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a case cannot go from {from} to {to}")]
pub struct TransitionError {
    pub from: CaseStatus,
    pub to: CaseStatus,
}

impl CaseStatus {
    /// Whether the case still needs work from us or the customer.
    pub fn is_active(self) -> bool {
        !matches!(self, CaseStatus::Solved | CaseStatus::Closed)
    }

    /// Validates an explicit status change made by staff or an integrator.
    /// Setting the current status again is a no-op and allowed.
    pub fn transition_to(self, to: CaseStatus) -> Result<CaseStatus, TransitionError> {
        use CaseStatus::*;
        let ok = self == to
            || match self {
                New => matches!(to, Open | Pending | OnHold | Solved),
                Open | Pending | OnHold => matches!(to, Open | Pending | OnHold | Solved),
                Solved => matches!(to, Open | Closed),
                Closed => false,
            };
        if ok {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }

    /// The status after a new message from the customer: pending and solved cases reopen,
    /// others keep their status; a closed case cannot take replies.
    pub fn on_customer_reply(self) -> Result<CaseStatus, TransitionError> {
        use CaseStatus::*;
        match self {
            Pending | Solved => Ok(Open),
            New | Open | OnHold => Ok(self),
            Closed => Err(TransitionError { from: Closed, to: Open }),
        }
    }

    /// The status after an agent's public reply: a new case becomes open.
    pub fn on_agent_reply(self) -> CaseStatus {
        match self {
            CaseStatus::New => CaseStatus::Open,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CaseStatus::*;
    use super::*;

    #[test]
    fn happy_path_is_allowed() {
        let s = New.transition_to(Open).unwrap();
        let s = s.transition_to(Pending).unwrap();
        let s = s.transition_to(Solved).unwrap();
        assert_eq!(s.transition_to(Closed), Ok(Closed));
    }

    #[test]
    fn illegal_transitions_are_errors() {
        assert_eq!(New.transition_to(Closed), Err(TransitionError { from: New, to: Closed }));
        assert!(Open.transition_to(New).is_err());
        assert!(Open.transition_to(Closed).is_err());
        assert!(Solved.transition_to(Pending).is_err());
        for to in CaseStatus::ALL {
            if *to != Closed {
                assert!(Closed.transition_to(*to).is_err(), "closed -> {to}");
            }
        }
    }

    #[test]
    fn customer_reply_reopens_pending_and_solved() {
        assert_eq!(Pending.on_customer_reply(), Ok(Open));
        assert_eq!(Solved.on_customer_reply(), Ok(Open));
        assert_eq!(OnHold.on_customer_reply(), Ok(OnHold));
        assert_eq!(New.on_customer_reply(), Ok(New));
        assert!(Closed.on_customer_reply().is_err());
    }

    #[test]
    fn nothing_but_closed_is_terminal_and_new_is_never_reentered() {
        for from in CaseStatus::ALL {
            let exits = CaseStatus::ALL.iter().filter(|to| *to != from && from.transition_to(**to).is_ok()).count();
            assert_eq!(exits == 0, *from == Closed, "{from}");
            if *from != New {
                assert!(from.transition_to(New).is_err(), "{from} -> new");
            }
        }
    }
}
