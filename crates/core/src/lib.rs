//! Caseflow's domain: identifiers, email addresses, the case state machine, enums shared by
//! every channel, and the injected [`Clock`].
//!
//! This crate must not depend on anything that does I/O (no tokio, diesel, actix): every other
//! crate depends on it, and the pure engines (routing, SLA) are tested against it directly.

pub mod clock;
pub mod email;
pub mod enums;
pub mod html;
pub mod identity;
pub mod ids;
pub mod status;

pub use clock::{Clock, FixedClock};
pub use email::{EmailAddress, EmailError};
pub use enums::{ActorKind, Channel, MessageDirection, ParseEnumError, Presence, Priority, Rating, Role, Tier};
pub use identity::{normalize_identity, IdentityError, IdentityKind};
pub use ids::*;
pub use status::{CaseStatus, TransitionError};
