//! Small closed vocabularies stored as snake_case text and exchanged as JSON strings.

use serde::{Deserialize, Serialize};

/// A string did not name a variant of a closed vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}; expected one of: {expected}")]
pub struct ParseEnumError {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static str,
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $label:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and serialized form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::enums::ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::enums::ParseEnumError {
                        kind: $label,
                        value: s.chars().take(64).collect(),
                        expected: concat!($($text, " "),+),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// How urgent a case is.
    Priority, "priority" {
        Low => "low",
        Normal => "normal",
        High => "high",
        Urgent => "urgent",
    }
);

string_enum!(
    /// The touch point a case or message came through.
    Channel, "channel" {
        /// Inbound email (IMAP) and replies by SMTP.
        Email => "email",
        /// The public web form; replies go out by email.
        Web => "web",
        /// Live chat over WebSocket.
        Chat => "chat",
        /// Created by an integrator through the REST API.
        Api => "api",
    }
);

string_enum!(
    /// Which way a message travels.
    MessageDirection, "direction" {
        /// From the customer.
        Inbound => "inbound",
        /// From us to the customer.
        Outbound => "outbound",
        /// Internal note; never sent to the customer.
        Note => "note",
    }
);

string_enum!(
    /// What a staff user may do.
    Role, "role" {
        Admin => "admin",
        Supervisor => "supervisor",
        Agent => "agent",
    }
);

string_enum!(
    /// Whether an agent can take work now.
    Presence, "presence" {
        Online => "online",
        Away => "away",
        Offline => "offline",
    }
);

string_enum!(
    /// Customer tier, an input to routing and SLA policy matching.
    Tier, "tier" {
        Standard => "standard",
        Silver => "silver",
        Gold => "gold",
        Platinum => "platinum",
    }
);

string_enum!(
    /// Who performed an action recorded in an audit log.
    ActorKind, "actor kind" {
        Customer => "customer",
        Agent => "agent",
        Integration => "integration",
        System => "system",
    }
);

string_enum!(
    /// A customer's answer to a satisfaction survey.
    Rating, "rating" {
        Good => "good",
        Bad => "bad",
    }
);

impl Role {
    /// Supervisors and admins oversee other agents' work.
    pub fn is_supervisor_or_admin(self) -> bool {
        matches!(self, Role::Admin | Role::Supervisor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn every_variant_round_trips_through_text() {
        for p in Priority::ALL {
            assert_eq!(Priority::from_str(p.as_str()), Ok(*p));
        }
        for r in Rating::ALL {
            assert_eq!(Rating::from_str(r.as_str()), Ok(*r));
        }
        for c in Channel::ALL {
            assert_eq!(Channel::from_str(c.as_str()), Ok(*c));
        }
        for r in Role::ALL {
            assert_eq!(Role::from_str(r.as_str()), Ok(*r));
        }
    }

    #[test]
    fn unknown_text_names_the_choices() {
        let err = Priority::from_str("critical").unwrap_err();
        assert_eq!(err.kind, "priority");
        assert!(err.to_string().contains("urgent"), "{err}");
    }
}
