//! The timeline journal: what `pulse-deploy timeline` draws, recorded by the commands as they run —
//! rollout events (`deploy v2`, `rollback by undrain to v1`, a stop by Ctrl-C) and samples of every
//! version's weight, sessions and phase whenever they change (during `deploy` and `rollback`, `watch`,
//! `status`, `reap`). One JSON line each in `timeline.jsonl`, next to the release history.
//!
//! Bounded: once the file passes [`MAX_BYTES`] it is rewritten keeping its newest half, so a `watch`
//! running for months keeps the recent rollouts. Recording is best effort: a journal that cannot be
//! written never fails a deploy (the command says so once on stderr).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pulse_deploy_core::rollout::{AppStatus, VersionSummary};
use serde::{Deserialize, Serialize};

use crate::timeline::{Mark, Sample};

/// The size past which the journal keeps only its newest half.
pub const MAX_BYTES: u64 = 1 << 20;

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A rollout event.
    Mark {
        /// Milliseconds since the Unix epoch.
        at_ms: u64,
        /// What happened, e.g. `deploy v2`.
        label: String,
    },
    /// One version at one moment.
    Sample {
        /// Milliseconds since the Unix epoch.
        at_ms: u64,
        /// The version.
        version: String,
        /// Its weight in percent.
        weight: u32,
        /// Sessions its instances reported.
        sessions: u64,
        /// Its phase (`gone` once reaped).
        phase: String,
    },
}

/// Milliseconds since the Unix epoch.
pub fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

/// The journal of one state directory.
#[derive(Debug, Clone)]
pub struct Journal {
    file: PathBuf,
    warned: Arc<AtomicBool>,
}

impl Journal {
    /// The journal kept under `state_dir`.
    pub fn new(state_dir: &Path) -> Journal {
        Journal { file: state_dir.join("timeline.jsonl"), warned: Arc::default() }
    }

    /// The file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Records a rollout event now.
    pub fn mark(&self, label: impl Into<String>) {
        self.append(&[Entry::Mark { at_ms: millis(SystemTime::now()), label: label.into() }]);
    }

    /// Records every version of `status`, at the status's time.
    pub fn status(&self, status: &AppStatus) {
        let at_ms = millis(status.at);
        let entries: Vec<Entry> = status
            .versions
            .iter()
            .map(|v| Entry::Sample {
                at_ms,
                version: v.version.to_string(),
                weight: v.weight,
                sessions: v.sessions,
                phase: v.phase.to_string(),
            })
            .collect();
        self.append(&entries);
    }

    /// Records a rollout's snapshot (an `Observed` event), now.
    pub fn observed(&self, versions: &[VersionSummary]) {
        let at_ms = millis(SystemTime::now());
        let entries: Vec<Entry> = versions
            .iter()
            .map(|v| Entry::Sample {
                at_ms,
                version: v.version.to_string(),
                weight: v.weight,
                sessions: v.sessions,
                phase: v.phase.to_string(),
            })
            .collect();
        self.append(&entries);
    }

    /// Records that `version` was reaped (its line ends here).
    pub fn gone(&self, version: &str) {
        let at_ms = millis(SystemTime::now());
        self.append(&[Entry::Sample {
            at_ms,
            version: version.to_owned(),
            weight: 0,
            sessions: 0,
            phase: "gone".into(),
        }]);
    }

    /// Appends `entries` in one write, then keeps the file under [`MAX_BYTES`]. Never fails: the first
    /// error is reported on stderr.
    pub fn append(&self, entries: &[Entry]) {
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self.try_append(entries) {
            if !self.warned.swap(true, Ordering::SeqCst) {
                eprintln!("pulse-deploy: not recording the timeline ({e})");
            }
        }
    }

    fn try_append(&self, entries: &[Entry]) -> Result<(), String> {
        let err = |e: std::io::Error| format!("{}: {e}", self.file.display());
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut text = String::new();
        for e in entries {
            text.push_str(&serde_json::to_string(e).map_err(|e| e.to_string())?);
            text.push('\n');
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.file).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        if f.metadata().map_err(err)?.len() > MAX_BYTES {
            self.keep_newest_half().map_err(err)?;
        }
        Ok(())
    }

    /// Rewrites the file with its newest half (whole lines), through a temporary file and a rename.
    fn keep_newest_half(&self) -> std::io::Result<()> {
        let text = std::fs::read_to_string(&self.file)?;
        let cut = text.len() - (MAX_BYTES as usize / 2).min(text.len());
        let start = text[cut..].find('\n').map(|i| cut + i + 1).unwrap_or(text.len());
        let tmp = self.file.with_extension("jsonl.tmp");
        std::fs::write(&tmp, &text[start..])?;
        std::fs::rename(&tmp, &self.file)
    }

    /// Every entry, oldest first (lines that do not parse, e.g. one cut by a crash, are skipped).
    pub fn read(&self) -> Result<Vec<Entry>, String> {
        let text = match std::fs::read_to_string(&self.file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("{}: {e}", self.file.display())),
        };
        Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
    }
}

/// The entries as the picture's samples and marks, in seconds since the Unix epoch.
pub fn picture_data(entries: &[Entry]) -> (Vec<Sample>, Vec<Mark>) {
    let (mut samples, mut marks) = (Vec::new(), Vec::new());
    for e in entries {
        match e {
            Entry::Mark { at_ms, label } => {
                marks.push(Mark { t: *at_ms as f64 / 1000.0, label: label.clone() })
            }
            Entry::Sample { at_ms, version, weight, sessions, phase } => samples.push(Sample {
                t: *at_ms as f64 / 1000.0,
                version: version.clone(),
                weight: *weight,
                sessions: *sessions,
                phase: phase.clone(),
            }),
        }
    }
    (samples, marks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("pulse-journal-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn records_and_reads_back_marks_and_samples() {
        let d = dir();
        let j = Journal::new(&d);
        j.mark("deploy v1");
        j.gone("v0");
        let entries = j.read().unwrap();
        assert!(matches!(&entries[0], Entry::Mark { label, .. } if label == "deploy v1"), "{entries:?}");
        assert!(matches!(&entries[1], Entry::Sample { phase, .. } if phase == "gone"), "{entries:?}");
        let (samples, marks) = picture_data(&entries);
        assert_eq!((samples.len(), marks.len()), (1, 1));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn stays_bounded_keeping_the_newest_entries() {
        let d = dir();
        let j = Journal::new(&d);
        let n = 30_000;
        for i in 0..n {
            j.append(&[Entry::Mark { at_ms: i, label: format!("event {i}") }]);
        }
        let size = std::fs::metadata(j.file()).unwrap().len();
        assert!(size <= MAX_BYTES, "{size} bytes");
        let entries = j.read().unwrap();
        assert!(entries.len() < n as usize, "old entries were dropped");
        assert_eq!(entries.last(), Some(&Entry::Mark { at_ms: n - 1, label: format!("event {}", n - 1) }));
        let _ = std::fs::remove_dir_all(&d);
    }
}
