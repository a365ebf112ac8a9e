//! The release history of an app: every release `deploy` or `rollback` started, one JSON line each, in the
//! local state directory (`releases.jsonl`). What `rollback` redeploys once the previous version was reaped.

use std::io::Write;
use std::path::{Path, PathBuf};

use pulse_deploy_core::{Release, VersionId};

/// The history file of one state directory.
#[derive(Debug, Clone)]
pub struct History {
    file: PathBuf,
}

impl History {
    /// The history kept under `state_dir`.
    pub fn new(state_dir: &Path) -> History {
        History { file: state_dir.join("releases.jsonl") }
    }

    /// Appends `release` (synced, so a crash right after does not lose it).
    pub fn record(&self, release: &Release) -> Result<(), String> {
        let err = |e: std::io::Error| format!("{}: {e}", self.file.display());
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.file).map_err(err)?;
        let line = serde_json::to_string(release).map_err(|e| e.to_string())?;
        writeln!(f, "{line}").map_err(err)?;
        f.sync_all().map_err(err)
    }

    /// Every recorded release, oldest first.
    pub fn all(&self) -> Result<Vec<Release>, String> {
        let text = match std::fs::read_to_string(&self.file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("{}: {e}", self.file.display())),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}", self.file.display())))
            .collect()
    }

    /// The release deployed last before `current` was (a different version).
    pub fn before(&self, current: &VersionId) -> Result<Option<Release>, String> {
        let all = self.all()?;
        let Some(at) = all.iter().rposition(|r| &r.version == current) else { return Ok(None) };
        Ok(all[..at].iter().rev().find(|r| &r.version != current).cloned())
    }
}
