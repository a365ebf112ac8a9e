//! How the drain secret reaches a container without appearing in `docker inspect`.
//!
//! The secret is written to a file on the host, `<state dir>/drain-secrets/<app>/drain-secret`, in a
//! directory only the deployer's user can enter (0700). The file is mode 0444, so that whatever user the
//! image runs as can read it through the bind mount (the host directory's 0700 still keeps other host users
//! out). Each instance gets the file bind-mounted read-only at [`CONTAINER_PATH`] and the variable
//! [`FILE_ENV`] pointing to it. `docker inspect` then shows the mount's host path, never the value.
//!
//! Limits: anyone who can use the Docker socket can still read the secret (`docker exec`, `docker cp`) —
//! access to the Docker socket is root-equivalent anyway. The bind mount needs the Docker daemon to see
//! the deployer's filesystem (a local daemon, or Docker Desktop with the state dir shared). A secret
//! changed later reaches new containers only: the file is replaced atomically and running containers keep
//! the file they were started with.

use std::io::Write;
use std::path::{Path, PathBuf};

use pulse_deploy_core::{AppName, Error, Result, Secret};

/// Where the secret is mounted inside every instance.
pub const CONTAINER_PATH: &str = "/run/secrets/pulse-drain-secret";
/// The environment variable telling the app where to read the secret.
pub const FILE_ENV: &str = "PULSE_DRAIN_SECRET_FILE";

/// The host-side directory holding one secret file per app.
#[derive(Debug, Clone)]
pub(super) struct SecretFiles {
    root: PathBuf,
}

impl SecretFiles {
    /// Secret files under `<state_dir>/drain-secrets`. `state_dir` must be absolute (the Docker daemon
    /// resolves bind-mount sources itself).
    pub(super) fn new(state_dir: &Path) -> Result<Self> {
        if !state_dir.is_absolute() {
            return Err(Error::invalid(
                "docker.state_dir",
                format!(
                    "`{}` is relative; give an absolute path (the Docker daemon resolves bind mounts itself)",
                    state_dir.display()
                ),
            ));
        }
        Ok(SecretFiles { root: state_dir.join("drain-secrets") })
    }

    /// The file holding `app`'s secret (it may not exist yet).
    pub(super) fn path(&self, app: &AppName) -> PathBuf {
        self.root.join(app.as_str()).join("drain-secret")
    }

    /// Writes `secret` for `app` unless the file already holds it, and returns the file's path.
    /// Idempotent; safe to repeat after a crash at any point (the file is replaced atomically).
    pub(super) fn ensure(&self, app: &AppName, secret: &Secret) -> Result<PathBuf> {
        let dir = self.root.join(app.as_str());
        let path = dir.join("drain-secret");
        if std::fs::read(&path).is_ok_and(|held| secret.matches(&held)) {
            return Ok(path);
        }
        create_private_dir(&self.root)?;
        create_private_dir(&dir)?;
        let tmp = dir.join(format!(".drain-secret.{}.tmp", rand::random::<u64>()));
        let written = write_readonly(&tmp, secret).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_error(&path, e));
        }
        tracing::debug!(app = %app, path = %path.display(), "drain secret file written");
        Ok(path)
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) => return Err(io_error(dir, e)),
    }
    // An existing directory keeps its mode under `create`: tighten it.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| io_error(dir, e))
}

fn write_readonly(path: &Path, secret: &Secret) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o444).open(path)?;
    f.write_all(secret.expose().as_bytes())?;
    f.sync_all()
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::provider_source(
        "docker",
        format!("could not write the drain secret file {}; check the state directory is writable (set it with DockerOrchestratorBuilder::state_dir)", path.display()),
        false,
        e,
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn tmp_state() -> PathBuf {
        let d = std::env::temp_dir().join(format!("pulse-secret-test-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn writes_private_readonly_file_and_is_idempotent() {
        let state = tmp_state();
        let files = SecretFiles::new(&state).unwrap();
        let app = AppName::new("shop").unwrap();
        let s = Secret::new("test", "0123456789abcdef-secret").unwrap();
        let p = files.ensure(&app, &s).unwrap();
        assert_eq!(p, files.path(&app));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "0123456789abcdef-secret");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o444);
        let dir_mode = std::fs::metadata(p.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(files.ensure(&app, &s).unwrap(), p);
        let s2 = Secret::new("test", "another-secret-of-enough-length").unwrap();
        files.ensure(&app, &s2).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "another-secret-of-enough-length");
        let leftovers = std::fs::read_dir(p.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
        std::fs::remove_dir_all(state).unwrap();
    }

    #[test]
    fn relative_state_dir_is_refused() {
        let e = SecretFiles::new(Path::new("state")).unwrap_err().to_string();
        assert!(e.contains("docker.state_dir") && e.contains("absolute"), "{e}");
    }
}
