//! Filesystem xDS: the CDS and RDS files Envoy watches, written atomically (a file beside the target,
//! flushed to disk, then `rename()`d into the watched directory, which Envoy sees as one move event).
//!
//! This module only writes and reads files. The order of writes (clusters before the routes that name
//! them, routes before the removal of clusters) and waiting for Envoy to apply them is the router's job.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use pulse_deploy_core::{Error, Result};
use serde_json::{json, Value};

/// The xDS files of one router inside its state directory.
#[derive(Debug, Clone)]
pub(super) struct XdsFiles {
    dir: PathBuf,
    cds: PathBuf,
    rds: PathBuf,
}

impl XdsFiles {
    /// The files under `state_dir/xds/` (the directory is created by [`XdsFiles::create_dir`]).
    pub(super) fn new(state_dir: &Path) -> Self {
        let dir = state_dir.join("xds");
        XdsFiles { cds: dir.join("cds.json"), rds: dir.join("rds.json"), dir }
    }

    /// Creates the watched directory.
    pub(super) fn create_dir(&self) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, "create", e))
    }

    /// Paths as the bootstrap names them.
    pub(super) fn paths(&self) -> XdsPaths<'_> {
        XdsPaths { dir: &self.dir, cds: &self.cds, rds: &self.rds }
    }

    /// The CDS file.
    pub(super) fn cds_path(&self) -> &Path {
        &self.cds
    }

    /// The RDS file.
    pub(super) fn rds_path(&self) -> &Path {
        &self.rds
    }

    /// The resources currently in the CDS file (empty if it does not exist or cannot be parsed).
    pub(super) fn read_cds(&self) -> Vec<Value> {
        read_resources(&self.cds)
    }

    /// The resources currently in the RDS file (empty if it does not exist or cannot be parsed).
    pub(super) fn read_rds(&self) -> Vec<Value> {
        read_resources(&self.rds)
    }

    /// Writes the CDS file atomically with `version_info`.
    pub(super) fn write_cds(&self, version_info: &str, resources: Vec<Value>) -> Result<()> {
        write_atomic(&self.cds, &discovery_response(version_info, resources), Durability::Volatile)
    }

    /// Writes the RDS file atomically with `version_info`.
    pub(super) fn write_rds(&self, version_info: &str, resources: Vec<Value>) -> Result<()> {
        write_atomic(&self.rds, &discovery_response(version_info, resources), Durability::Volatile)
    }
}

fn read_resources(path: &Path) -> Vec<Value> {
    let Ok(text) = fs::read_to_string(path) else { return Vec::new() };
    let Ok(value) = serde_json::from_str::<Value>(&text) else { return Vec::new() };
    value.get("resources").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// Whether a write must reach the disk before the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// Flushed to disk first (`state.json`: the intent a restarted deployer reads back).
    Durable,
    /// Left to the page cache: survives the death of any process, not a power cut. For files regenerated
    /// from `state.json` whenever Envoy is (re)started (the xDS files, the bootstrap).
    Volatile,
}

/// Writes `value` as pretty JSON to `path` through a temporary file in the same directory and a rename
/// (readers see the old or the new file, never a partial one).
pub(super) fn write_atomic(path: &Path, value: &Value, durability: Durability) -> Result<()> {
    let dir = path.parent().ok_or_else(|| Error::invalid("state_dir", "has no parent directory"))?;
    // The temporary name must not look like a watched file; Envoy only reacts to the final rename.
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let body = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::provider_source("envoy", "serialising configuration", false, e))?;
    let mut file = fs::File::create(&tmp).map_err(|e| io_error(&tmp, "create", e))?;
    file.write_all(&body).map_err(|e| io_error(&tmp, "write", e))?;
    if durability == Durability::Durable {
        file.sync_all().map_err(|e| io_error(&tmp, "flush", e))?;
    }
    drop(file);
    fs::rename(&tmp, path).map_err(|e| io_error(path, "rename into place", e))?;
    Ok(())
}

/// An I/O error on a state file, as a provider error naming the file.
pub(super) fn io_error(path: &Path, action: &str, e: std::io::Error) -> Error {
    Error::provider_source(
        "envoy",
        format!("cannot {action} {}; check that the state directory is writable", path.display()),
        false,
        e,
    )
}

/// Where the xDS files live, as Envoy sees them.
#[derive(Debug, Clone, Copy)]
pub(super) struct XdsPaths<'a> {
    /// The watched directory (files are renamed into it).
    pub dir: &'a Path,
    /// The CDS file inside `dir`.
    pub cds: &'a Path,
    /// The RDS file inside `dir`.
    pub rds: &'a Path,
}

/// A discovery-response file body: `{"version_info": ..., "resources": [...]}`.
pub(super) fn discovery_response(version_info: &str, resources: Vec<Value>) -> Value {
    json!({ "version_info": version_info, "resources": resources })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("pulse-xds-test-{}", std::process::id()));
        let files = XdsFiles::new(&dir);
        files.create_dir().unwrap();
        assert!(files.read_cds().is_empty());
        files.write_cds("3", vec![serde_json::json!({"name": "a"})]).unwrap();
        assert_eq!(files.read_cds(), vec![serde_json::json!({"name": "a"})]);
        let leftovers: Vec<_> = fs::read_dir(dir.join("xds"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(leftovers, vec!["cds.json".to_string()]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
