//! The status table every command ends with: one line per live version (phase, weight, healthy/total
//! instances, sessions, age, drain deadline, image), aligned for a terminal and plain enough for a log.

use std::time::{Duration, SystemTime};

use pulse_deploy_core::rollout::AppStatus;

/// Renders `status` as an aligned table with a header line, or one line saying nothing runs.
pub fn render(status: &AppStatus) -> String {
    if status.versions.is_empty() {
        return format!("app {}: no version runs\n", status.app);
    }
    let header = ["VERSION", "PHASE", "WEIGHT", "HEALTHY", "SESSIONS", "AGE", "DRAIN DEADLINE", "IMAGE"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for v in &status.versions {
        let target = if status.target.as_ref() == Some(&v.version) { "*" } else { "" };
        rows.push(vec![
            format!("{}{target}", v.version),
            v.phase.to_string(),
            format!("{}%", v.weight),
            format!("{}/{}", v.healthy, v.replicas),
            if v.unreachable > 0 { format!("{}+?", v.sessions) } else { v.sessions.to_string() },
            short(v.age()),
            v.drain_deadline.map(|d| in_from(d, status.at)).unwrap_or_else(|| "-".into()),
            v.image.clone(),
        ]);
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if !status.waiting.is_empty() {
        out.push_str(&format!("waiting: {}\n", status.waiting.join("; ")));
    }
    out
}

/// `1h02m`, `5m10s`, `12s`.
fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `in 5h59m` or `passed`.
fn in_from(deadline: SystemTime, now: SystemTime) -> String {
    match deadline.duration_since(now) {
        Ok(left) => format!("in {}", short(left)),
        Err(_) => "passed".into(),
    }
}
