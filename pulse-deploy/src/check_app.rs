//! `pulse-deploy check-app URL`: the drain-protocol conformance checker (`pulse_server_drain::checker`)
//! against one running instance, with the secret read from a file (the configuration's
//! `local.secret_file`, or `--secret-file`) and never printed: the checker redacts it from everything it
//! records, and nothing here formats it. The checker drains the instance it checks.

use std::path::Path;

use pulse_deploy_core::conformance::{CheckStatus, ConformanceReport};
use pulse_deploy_core::Secret;
use pulse_server_drain::checker::{CheckOptions, Mode};

use crate::cli::CheckMode;

/// The checker's options for `mode`, with `health_path` overriding the mode's default.
pub fn options(mode: CheckMode, health_path: Option<String>) -> CheckOptions {
    let mut o = match mode {
        CheckMode::Plain => CheckOptions { mode: Mode::Plain, ..CheckOptions::default() },
        CheckMode::Pulse => CheckOptions::pulse(),
    };
    if let Some(p) = health_path {
        o.health_path = p;
    }
    o
}

/// Reads the drain secret from `file` (surrounding whitespace trimmed). The error names the file, never
/// the content.
pub fn read_secret(file: &Path) -> Result<Secret, String> {
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("the drain secret {}: {e}", file.display()))?;
    Secret::new("drain secret file", text.trim().to_owned())
        .map_err(|e| format!("the drain secret {}: {e}", file.display()))
}

/// Checks that `url` is a plain `http://HOST:PORT` URL the checker can reach.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("`{url}`: the checker speaks plain HTTP to one instance; write http://HOST:PORT")
    })?;
    if rest.trim_end_matches('/').is_empty() {
        return Err(format!("`{url}` names no host; write http://HOST:PORT"));
    }
    Ok(())
}

/// The report as JSON: every check with its outcome and what was seen.
pub fn to_json(report: &ConformanceReport) -> serde_json::Value {
    let checks: Vec<serde_json::Value> = report
        .checks
        .iter()
        .map(|c| {
            let (outcome, detail) = match &c.status {
                CheckStatus::Passed => ("passed", c.saw.as_str()),
                CheckStatus::Skipped(why) => ("skipped", why.as_str()),
                CheckStatus::Failed(message) => ("failed", message.as_str()),
            };
            serde_json::json!({
                "name": c.name,
                "outcome": outcome,
                "detail": detail,
                "elapsed_ms": c.elapsed.as_millis() as u64,
            })
        })
        .collect();
    serde_json::json!({ "target": report.subject, "passed": report.passed(), "checks": checks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_plain_http_with_a_host() {
        assert!(check_url("http://127.0.0.1:8000").is_ok());
        assert!(check_url("https://example.com").unwrap_err().contains("http://HOST:PORT"));
        assert!(check_url("http://").is_err());
        assert!(check_url("127.0.0.1:8000").is_err());
    }

    #[test]
    fn pulse_mode_uses_the_pulse_health_path_unless_told_otherwise() {
        assert_eq!(options(CheckMode::Pulse, None).health_path, "/_pulse/health");
        assert_eq!(options(CheckMode::Plain, None).health_path, "/health");
        assert_eq!(options(CheckMode::Pulse, Some("/h".into())).health_path, "/h");
    }
}
