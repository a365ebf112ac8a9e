//! [`Secret`]: the drain token, held so that it never reaches a log line, an error or a `Debug` output,
//! and compared in constant time.

use std::fmt;

use subtle::ConstantTimeEq;

use crate::{Error, Result};

/// The shortest secret accepted. Shorter secrets are refused at startup.
pub const MIN_SECRET_LEN: usize = 16;

/// A shared secret (the drain token). `Debug` and `Display` print `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret, refusing an empty or short one (`field` names where it came from, for the error).
    pub fn new(field: &'static str, value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(Error::invalid(field, "the secret is empty; set a random string of at least 16 characters (e.g. `openssl rand -hex 32`)"));
        }
        if trimmed.len() < MIN_SECRET_LEN {
            return Err(Error::invalid(
                field,
                format!("the secret is {} characters; use at least {MIN_SECRET_LEN} (e.g. `openssl rand -hex 32`)", trimmed.len()),
            ));
        }
        if trimmed.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
            return Err(Error::invalid(
                field,
                "the secret must be printable ASCII without spaces, so that it fits a Bearer token",
            ));
        }
        Ok(Secret(trimmed.to_owned()))
    }

    /// The secret's value, for sending it (e.g. in an `Authorization` header). Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares `candidate` with the secret in time that does not depend on where they differ.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        // ct_eq on slices of different length returns false at once; the length of the secret is not
        // itself secret-worthy (it is at least MIN_SECRET_LEN), its content is.
        self.0.as_bytes().ct_eq(candidate).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("drain.secret", "0123456789abcdef-very-secret").unwrap();
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert!(s.matches(b"0123456789abcdef-very-secret"));
        assert!(!s.matches(b"0123456789abcdef-very-secreT"));
        assert!(!s.matches(b""));
    }

    #[test]
    fn short_or_empty_refused_with_field() {
        let e = Secret::new("PULSE_DRAIN_SECRET", "").unwrap_err().to_string();
        assert!(e.contains("PULSE_DRAIN_SECRET") && e.contains("empty"), "{e}");
        let e = Secret::new("PULSE_DRAIN_SECRET", "short").unwrap_err().to_string();
        assert!(e.contains("at least 16"), "{e}");
        assert!(!e.contains("short\""), "{e}");
    }
}
