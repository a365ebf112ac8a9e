//! The checker's one redaction choke point: every string a checker report keeps (and so prints) passes
//! through [`Redactor::redact`], which replaces the drain secret (as sent, and JSON-escaped) and the
//! credential of any `Bearer` value, so a server that echoes requests cannot make the report print the
//! secret.
//!
//! Not for: redacting logs (the server never logs credentials).

use std::fmt;

/// What replaces a redacted value.
pub(super) const REDACTED: &str = "<redacted>";

/// Replaces secrets in report strings. Its `Debug` output never shows them.
#[derive(Clone)]
pub(crate) struct Redactor {
    needles: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.needles.len())
    }
}

impl Redactor {
    /// A redactor for `secret`.
    pub(crate) fn new(secret: &str) -> Self {
        let mut needles = vec![secret.to_owned()];
        let escaped = secret.replace('\\', "\\\\").replace('"', "\\\"");
        if escaped != secret {
            needles.push(escaped);
        }
        needles.retain(|n| !n.is_empty());
        Redactor { needles }
    }

    /// `s` with every secret and every `Bearer` credential replaced by [`REDACTED`].
    pub(crate) fn redact(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for n in &self.needles {
            out = out.replace(n.as_str(), REDACTED);
        }
        redact_bearer(&out)
    }
}

/// Replaces the token after every (case-insensitive) `bearer` followed by whitespace.
fn redact_bearer(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(found) = lower[i..].find("bearer") {
        let start = i + found + "bearer".len();
        let mut j = start;
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        let mut end = j;
        while end < bytes.len() && !matches!(bytes[end], b' ' | b'\t' | b'\r' | b'\n' | b'"' | b',' | b'\'') {
            end += 1;
        }
        out.push_str(&s[i..j]);
        // `Bearer realm="..."` is a challenge's auth-param, not a credential.
        let auth_param = s[j..end].ends_with('=') && bytes.get(end) == Some(&b'"');
        if j > start && end > j && &s[j..end] != REDACTED && !auth_param {
            out.push_str(REDACTED);
        } else {
            out.push_str(&s[j..end]);
        }
        i = end;
    }
    out.push_str(&s[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_bearer_values_are_replaced() {
        let r = Redactor::new("s3cret-0123456789\"x");
        let out = r.redact(
            r#"authorization: Bearer anything, echo {"a":"s3cret-0123456789\"x"} s3cret-0123456789"x"#,
        );
        assert!(!out.contains("s3cret"), "{out}");
        assert!(!out.contains("anything"), "{out}");
        assert_eq!(r.redact("BEARER\tabc def"), format!("BEARER\t{REDACTED} def"));
        assert_eq!(r.redact("realm=\"pulse-admin\" Bearer"), "realm=\"pulse-admin\" Bearer");
        let challenge = r#"www-authenticate: Bearer realm="pulse-admin", error="invalid_token""#;
        assert_eq!(r.redact(challenge), challenge, "a challenge carries no credential");
        assert_eq!(r.redact("no secrets"), "no secrets");
        assert!(!format!("{r:?}").contains("s3cret"));
    }
}
