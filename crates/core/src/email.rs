//! Email addresses, parsed once and normalized so that one person resolves to one identity.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not an acceptable email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email address is empty")]
    Empty,
    #[error("email address is longer than 254 characters")]
    TooLong,
    #[error("email address must contain exactly one '@' with text on both sides")]
    Shape,
    #[error("email address contains a character that is not allowed")]
    BadCharacter,
    #[error("email domain is not valid")]
    Domain,
}

/// A syntactically valid, normalized email address.
///
/// Normalization trims whitespace and lower-cases the whole address. RFC 5321 lets the local
/// part be case-sensitive, but no mainstream provider treats it so, and a helpdesk that splits
/// `Jane@x.org` from `jane@x.org` into two customers is worse than one that does not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, format = "email")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses and normalizes `raw`.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > 254 {
            return Err(EmailError::TooLong);
        }
        if s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '<' | '>' | ',' | ';' | '"' | '(' | ')' | '[' | ']' | '\\')
        }) {
            return Err(EmailError::BadCharacter);
        }
        let mut parts = s.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::Shape);
        };
        if local.is_empty() || domain.is_empty() || local.len() > 64 {
            return Err(EmailError::Shape);
        }
        if domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || domain.starts_with('-')
            || !domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-')
        {
            return Err(EmailError::Domain);
        }
        Ok(Self(s.to_lowercase()))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the '@'.
    pub fn domain(&self) -> &str {
        self.0.rsplit('@').next().unwrap_or_default()
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = EmailError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_and_whitespace() {
        let e = EmailAddress::parse("  Jane.Doe@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "jane.doe@example.org");
        assert_eq!(e.domain(), "example.org");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "   ",
            "no-at-sign",
            "a@b@c",
            "@x.org",
            "x@",
            "a b@x.org",
            "x@-x.org",
            "x@x..org",
            "x@.x.org",
            "Jane <jane@x.org>",
            "x@x.org.",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = format!("{}@x.org", "a".repeat(300));
        assert_eq!(EmailAddress::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn accepts_plus_addressing_and_idn() {
        assert!(EmailAddress::parse("jane+support@example.org").is_ok());
        assert!(EmailAddress::parse("jürgen@bücher.de").is_ok());
    }
}
