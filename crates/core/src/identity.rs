//! Customer identities: the keys by which any channel recognises a returning customer.

use crate::email::{EmailAddress, EmailError};
use crate::enums::string_enum;
use serde::{Deserialize, Serialize};

string_enum!(
    /// The kind of key an identity is.
    IdentityKind, "identity kind" {
        /// A normalized email address.
        Email => "email",
        /// A live-chat visitor id issued by the widget.
        ChatVisitor => "chat_visitor",
        /// An id in an integrator's system (CRM, shop).
        External => "external",
    }
);

/// Why an identity value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Email(#[from] EmailError),
    #[error("identity value is empty")]
    Empty,
    #[error("identity value is longer than 255 characters")]
    TooLong,
    #[error("identity value contains control characters")]
    Control,
}

/// Returns the canonical stored form of an identity value: email addresses are normalized,
/// opaque ids are trimmed and checked but keep their case (external systems may be
/// case-sensitive).
pub fn normalize_identity(kind: IdentityKind, raw: &str) -> Result<String, IdentityError> {
    match kind {
        IdentityKind::Email => Ok(EmailAddress::parse(raw)?.as_str().to_owned()),
        IdentityKind::ChatVisitor | IdentityKind::External => {
            let v = raw.trim();
            if v.is_empty() {
                return Err(IdentityError::Empty);
            }
            if v.chars().count() > 255 {
                return Err(IdentityError::TooLong);
            }
            if v.chars().any(char::is_control) {
                return Err(IdentityError::Control);
            }
            Ok(v.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_opaque_ids_are_trimmed() {
        assert_eq!(normalize_identity(IdentityKind::Email, " A@B.org").unwrap(), "a@b.org");
        assert_eq!(normalize_identity(IdentityKind::External, " CRM-42 ").unwrap(), "CRM-42");
        assert_eq!(normalize_identity(IdentityKind::ChatVisitor, "  "), Err(IdentityError::Empty));
        assert_eq!(normalize_identity(IdentityKind::External, "a\nb"), Err(IdentityError::Control));
        assert!(matches!(normalize_identity(IdentityKind::Email, "nope"), Err(IdentityError::Email(_))));
    }
}
