//! [`AppName`] and [`VersionId`]: the names every provider derives its resource names from.
//!
//! Both are lowercase DNS labels (`a-z`, `0-9`, `-`), short enough that `pulse-{app}-{version}` fits the
//! tightest provider limit: an ALB target group name has at most 32 characters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The longest app name: `pulse-` (6) + app (16) + `-` (1) + version (9) = 32, the ALB target group limit.
pub(super) const MAX_APP_NAME_LEN: usize = 16;
/// The longest version id (see [`MAX_APP_NAME_LEN`]).
pub(super) const MAX_VERSION_ID_LEN: usize = 9;

fn check_label(field: &'static str, value: &str, max: usize, example: &str) -> Result<()> {
    let fix = format!("use 1 to {max} characters of a-z, 0-9 and '-', starting and ending with a letter or digit (e.g. `{example}`)");
    if value.is_empty() {
        return Err(Error::invalid(field, format!("is empty; {fix}")));
    }
    if value.len() > max {
        return Err(Error::invalid(field, format!("`{value}` has {} characters; {fix}", value.len())));
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(Error::invalid(field, format!("`{value}` contains {c:?}; {fix}")));
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err(Error::invalid(field, format!("`{value}` starts or ends with '-'; {fix}")));
    }
    if value.contains("--") {
        return Err(Error::invalid(
            field,
            format!("`{value}` contains \"--\" (reserved as a separator); {fix}"),
        ));
    }
    Ok(())
}

macro_rules! label_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr, $example:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a name.
            pub fn new(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                check_label($field, &value, $max, $example)?;
                Ok(Self(value))
            }

            /// The name as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

label_type!(
    /// The name of an app: every version of one app shares its routes. E.g. `shop`.
    AppName, "app", MAX_APP_NAME_LEN, "shop"
);
label_type!(
    /// The id of one version of an app, e.g. `v124` or a short git sha `3f9a2c1`.
    VersionId, "version", MAX_VERSION_ID_LEN, "v124"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        assert_eq!(AppName::new("shop").unwrap().as_str(), "shop");
        VersionId::new("v124").unwrap();
        VersionId::new("3f9a2c1").unwrap();
        AppName::new("my-shop-eu-west1").unwrap();
    }

    #[test]
    fn errors_name_the_field_and_the_fix() {
        for bad in ["", "Shop", "shop_1", "-shop", "shop-", "a--b", "a-very-long-app-name"] {
            let e = AppName::new(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid app: "), "{e}");
            assert!(e.contains("a-z, 0-9"), "{e}");
        }
        let e = VersionId::new("v1234567890").unwrap_err().to_string();
        assert!(e.starts_with("invalid version: "), "{e}");
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<VersionId>("\"v1\"").is_ok());
        assert!(serde_json::from_str::<VersionId>("\"V1\"").is_err());
    }
}
