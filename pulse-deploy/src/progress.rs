//! Live progress of `deploy` and `rollback`, in one of three [`Style`]s:
//! - [`Style::Spinner`] on a terminal: the step in progress on one line redrawn in place (a spinner, what
//!   it does or waits for, how many instances are healthy, its elapsed time), turned into a permanent
//!   `✓ step (1.2 s)` line when it ends;
//! - [`Style::Plain`] when stdout is piped or `CI=true`: one line per event, nothing redrawn, no escape
//!   codes — what a log or a CI job wants;
//! - [`Style::Json`] with `--json`: one JSON object per event.
//!
//! Both human styles say what the rollout waits for (the planner's reasons) and each version's health
//! (`v2 starting 0% 1/2 healthy 0 sessions`).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pulse_deploy_core::rollout::{RolloutEvent, VersionSummary};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// One line per event.
    Plain,
    /// A spinner per step, redrawn in place.
    Spinner,
    /// One JSON object per event.
    Json,
}

impl Style {
    /// `Json` if asked; else `Spinner` when stdout is a terminal and `CI` is not `true`; else `Plain`.
    pub fn detect(json: bool) -> Style {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        match (json, std::io::stdout().is_terminal() && !ci) {
            (true, _) => Style::Json,
            (false, true) => Style::Spinner,
            (false, false) => Style::Plain,
        }
    }
}

const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// How often the spinner is redrawn.
pub const TICK: Duration = Duration::from_millis(100);

/// The step in progress (spinner style).
#[derive(Debug)]
struct Step {
    text: String,
    started: Instant,
}

struct Inner {
    out: Box<dyn Write + Send>,
    step: Option<Step>,
    /// The latest per-version summary (shown after the step).
    health: String,
    frame: usize,
    /// Whether the spinner line is on screen (and must be cleared before anything else is printed).
    drawn: bool,
    width: usize,
}

/// Where a command's progress goes. Cheap to share (`Arc`); [`Progress::sink`] makes it an event sink.
pub struct Progress {
    style: Style,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").field("style", &self.style).finish_non_exhaustive()
    }
}

impl Progress {
    /// Progress in `style` to stdout.
    pub fn stdout(style: Style) -> Arc<Progress> {
        Progress::to(style, Box::new(std::io::stdout()))
    }

    /// Progress in `style` to `out` (tests capture it).
    pub fn to(style: Style, out: Box<dyn Write + Send>) -> Arc<Progress> {
        let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(100usize).max(20);
        Arc::new(Progress {
            style,
            inner: Mutex::new(Inner {
                out,
                step: None,
                health: String::new(),
                frame: 0,
                drawn: false,
                width,
            }),
        })
    }

    /// The style.
    pub fn style(&self) -> Style {
        self.style
    }

    /// Redraws the spinner every [`TICK`] until the returned guard is dropped (spinner style only).
    pub fn ticking(self: &Arc<Self>) -> Ticker {
        if self.style != Style::Spinner {
            return Ticker(None);
        }
        let me = self.clone();
        Ticker(Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            loop {
                tick.tick().await;
                me.redraw();
            }
        })))
    }

    /// Prints a permanent line (above the spinner, which is drawn again on the next tick).
    pub fn line(&self, text: impl AsRef<str>) {
        let mut i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        clear(&mut i);
        let _ = writeln!(i.out, "{}", text.as_ref().trim_end_matches('\n'));
        let _ = i.out.flush();
    }

    /// Ends the step in progress without a line (before a table or an error is printed).
    pub fn clear(&self) {
        let mut i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        clear(&mut i);
        i.step = None;
        let _ = i.out.flush();
    }

    /// Redraws the spinner line (spinner style, when a step is in progress).
    pub fn redraw(&self) {
        let mut i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(step) = &i.step else { return };
        let frame = FRAMES[i.frame % FRAMES.len()];
        let mut text = format!("{frame} {} ({}s)", step.text, step.started.elapsed().as_secs());
        if !i.health.is_empty() {
            text = format!("{text} · {}", i.health);
        }
        let text: String = text.chars().take(i.width - 1).collect();
        i.frame += 1;
        let _ = write!(i.out, "\r\x1b[2K{text}");
        i.drawn = true;
        let _ = i.out.flush();
    }

    /// Shows one rollout event.
    pub fn event(&self, ev: &RolloutEvent) {
        match self.style {
            Style::Json => {
                if let Some(v) = json_of(ev) {
                    self.line(v.to_string());
                }
            }
            Style::Plain => {
                if let Some(text) = permanent(ev) {
                    self.line(text);
                }
                match ev {
                    RolloutEvent::ActionStarted { action } => self.line(format!("→ {action}")),
                    RolloutEvent::Waiting { reasons } => {
                        self.line(format!("… waiting: {}", reasons.join("; ")))
                    }
                    RolloutEvent::Observed { versions, .. } => self.line(format!("· {}", health(versions))),
                    _ => {}
                }
            }
            Style::Spinner => {
                if let Some(text) = permanent(ev) {
                    self.line(text);
                }
                match ev {
                    RolloutEvent::ActionStarted { action } => self.start(format!("→ {action}")),
                    RolloutEvent::ActionSucceeded { action, took } => {
                        let mut i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                        if i.step.as_ref().is_some_and(|s| s.text == format!("→ {action}")) {
                            i.step = None;
                            clear(&mut i);
                            let _ = writeln!(i.out, "✓ {action} ({:.1} s)", took.as_secs_f64());
                            let _ = i.out.flush();
                        }
                    }
                    RolloutEvent::Waiting { reasons } => {
                        self.start(format!("waiting: {}", reasons.join("; ")))
                    }
                    RolloutEvent::Observed { versions, .. } => {
                        self.inner.lock().unwrap_or_else(|e| e.into_inner()).health = health(versions);
                    }
                    _ => {}
                }
                self.redraw();
            }
        }
    }

    fn start(&self, text: String) {
        let mut i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        i.step = Some(Step { text, started: Instant::now() });
    }
}

/// Aborts the spinner's redraw task when dropped.
#[derive(Debug)]
pub struct Ticker(Option<tokio::task::JoinHandle<()>>);

impl Drop for Ticker {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}

fn clear(i: &mut Inner) {
    if i.drawn {
        let _ = write!(i.out, "\r\x1b[2K");
        i.drawn = false;
    }
}

/// `v1 draining 0% 2/2 healthy 4 sessions | v2 ready 100% 2/2 healthy 0 sessions`.
pub fn health(versions: &[VersionSummary]) -> String {
    let line: Vec<String> = versions
        .iter()
        .map(|v| {
            format!(
                "{} {} {}% {}/{} healthy {} sessions",
                v.version, v.phase, v.weight, v.healthy, v.instances.1, v.sessions
            )
        })
        .collect();
    line.join(" | ")
}

/// The events every human style prints as a line of their own.
fn permanent(ev: &RolloutEvent) -> Option<String> {
    Some(match ev {
        RolloutEvent::ActionRetried { action, attempt, error, .. } => {
            format!("↻ {action}: attempt {attempt} failed: {error}")
        }
        RolloutEvent::DrainSent { version, acknowledged, of } => {
            format!("✓ drain signal: {acknowledged} of {of} instances of {version} acknowledged")
        }
        RolloutEvent::Reaped { version } => format!("✓ reaped {version}"),
        RolloutEvent::RollingBack { version, reason } => format!("✗ rolling back {version}: {reason}"),
        RolloutEvent::GoalReached { target } => {
            format!("✓ {} has every new session", target.as_ref().map(|v| v.as_str()).unwrap_or("none"))
        }
        _ => return None,
    })
}

/// One event as JSON (`{"event": "action_started", ...}`).
fn json_of(ev: &RolloutEvent) -> Option<serde_json::Value> {
    use serde_json::json;
    Some(match ev {
        RolloutEvent::Observed { versions, .. } => json!({
            "event": "observed",
            "versions": versions.iter().map(|v| json!({
                "version": v.version, "phase": v.phase, "weight": v.weight, "healthy": v.healthy,
                "instances": v.instances.0, "replicas": v.instances.1, "sessions": v.sessions,
            })).collect::<Vec<_>>(),
        }),
        RolloutEvent::ActionStarted { action } => json!({ "event": "action_started", "action": action }),
        RolloutEvent::ActionSucceeded { action, took } => {
            json!({ "event": "action_succeeded", "action": action, "took_ms": took.as_millis() as u64 })
        }
        RolloutEvent::ActionRetried { action, attempt, error, .. } => {
            json!({ "event": "action_retried", "action": action, "attempt": attempt, "error": error })
        }
        RolloutEvent::DrainSent { version, acknowledged, of } => {
            json!({ "event": "drain_sent", "version": version, "acknowledged": acknowledged, "of": of })
        }
        RolloutEvent::Reaped { version } => json!({ "event": "reaped", "version": version }),
        RolloutEvent::Waiting { reasons } => json!({ "event": "waiting", "reasons": reasons }),
        RolloutEvent::RollingBack { version, reason } => {
            json!({ "event": "rolling_back", "version": version, "reason": reason })
        }
        RolloutEvent::GoalReached { target } => json!({ "event": "goal_reached", "target": target }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_deploy_core::{VersionId, VersionPhase};

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn events() -> Vec<RolloutEvent> {
        let v2 = VersionId::new("v2").unwrap();
        vec![
            RolloutEvent::ActionStarted { action: "deploy v2 (2 replicas of shop:2)".into() },
            RolloutEvent::ActionSucceeded {
                action: "deploy v2 (2 replicas of shop:2)".into(),
                took: Duration::from_millis(1200),
            },
            RolloutEvent::Observed {
                app: pulse_deploy_core::AppName::new("shop").unwrap(),
                versions: vec![VersionSummary {
                    version: v2.clone(),
                    phase: VersionPhase::Starting,
                    weight: 0,
                    instances: (2, 2),
                    healthy: 1,
                    sessions: 0,
                }],
            },
            RolloutEvent::Waiting { reasons: vec!["v2: 1 of 2 instances healthy".into()] },
            RolloutEvent::GoalReached { target: Some(v2) },
        ]
    }

    #[test]
    fn plain_lines_have_no_escape_codes_and_say_what_is_waited_for() {
        let out = Captured::default();
        let p = Progress::to(Style::Plain, Box::new(out.clone()));
        for ev in events() {
            p.event(&ev);
        }
        let text = out.text();
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");
        assert!(text.contains("→ deploy v2 (2 replicas of shop:2)\n"), "{text}");
        assert!(text.contains("· v2 starting 0% 1/2 healthy 0 sessions\n"), "{text}");
        assert!(text.contains("… waiting: v2: 1 of 2 instances healthy\n"), "{text}");
        assert!(text.contains("✓ v2 has every new session\n"), "{text}");
    }

    #[test]
    fn the_spinner_redraws_one_line_and_ends_each_step_with_its_time() {
        let out = Captured::default();
        let p = Progress::to(Style::Spinner, Box::new(out.clone()));
        let evs = events();
        p.event(&evs[0]);
        p.redraw();
        assert!(out.text().contains("\r\x1b[2K⠙ → deploy v2"), "{:?}", out.text());
        p.event(&evs[1]);
        assert!(out.text().contains("✓ deploy v2 (2 replicas of shop:2) (1.2 s)\n"), "{:?}", out.text());
        p.event(&evs[2]);
        p.event(&evs[3]);
        let drawn = out.text();
        let last = drawn.rsplit("\r\x1b[2K").next().unwrap();
        assert!(last.contains("waiting: v2: 1 of 2 instances healthy"), "{last:?}");
        assert!(last.contains("· v2 starting 0% 1/2 healthy"), "{last:?}");
        p.event(&evs[4]);
        p.clear();
        assert!(out.text().ends_with("✓ v2 has every new session\n") || out.text().ends_with("\r\x1b[2K"));
    }

    #[test]
    fn json_is_one_object_per_event() {
        let out = Captured::default();
        let p = Progress::to(Style::Json, Box::new(out.clone()));
        for ev in events() {
            p.event(&ev);
        }
        let kinds: Vec<String> = out
            .text()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(kinds, ["action_started", "action_succeeded", "observed", "waiting", "goal_reached"]);
    }
}
