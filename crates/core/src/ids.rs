//! Typed identifiers. Ids are UUIDv7 strings (time-ordered, unique across nodes without a
//! database round trip); the newtypes keep a case id from being passed where an agent id is due.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id read from storage or a request path.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

id_type!(
    /// Identifies a case.
    CaseId
);
id_type!(
    /// Identifies a customer.
    CustomerId
);
id_type!(
    /// Identifies one of a customer's identities (email address, chat visitor, external id).
    IdentityId
);
id_type!(
    /// Identifies an agent (a staff user of any role).
    AgentId
);
id_type!(
    /// Identifies a team.
    TeamId
);
id_type!(
    /// Identifies a skill.
    SkillId
);
id_type!(
    /// Identifies a message on a case.
    MessageId
);
id_type!(
    /// Identifies an attachment.
    AttachmentId
);
id_type!(
    /// Identifies an integrator API token.
    ApiTokenId
);
id_type!(
    /// Identifies an audit event.
    EventId
);
id_type!(
    /// Identifies an outbox row.
    OutboxId
);

/// The human-readable case number customers quote ("#1042").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = i64)]
pub struct CaseNumber(pub i64);

impl fmt::Display for CaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
