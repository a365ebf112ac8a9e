//! The controller lease: at most one writer per app. `pulse-deploy watch` holds an exclusive OS lock on
//! `<state_dir>/controller.lock` for as long as it runs (the kernel releases it when the process ends,
//! SIGKILL included, so a lease is never stale); the file names the holder's pid for messages. `deploy`
//! asks [`ControllerLease::held_by_other`]: when a controller holds the lease, `deploy` hands the release
//! over (it only creates the version; the controller shifts, drains and reaps) instead of running the
//! engine itself, so two writers never fight over weights or drains.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lease file's name inside the state directory.
pub const FILE_NAME: &str = "controller.lock";

/// The held lease; released on drop (and by the kernel if the process dies).
#[derive(Debug)]
pub struct ControllerLease {
    file: File,
    path: PathBuf,
}

/// Who holds the lease, when someone does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's process id, as it wrote it (empty if unreadable).
    pub pid: String,
    /// The lease file.
    pub path: PathBuf,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid.as_str() {
            "" => write!(f, "a controller (lease {})", self.path.display()),
            pid => write!(f, "a controller (pid {pid}, lease {})", self.path.display()),
        }
    }
}

impl ControllerLease {
    /// Takes the lease of the app whose state lives in `state_dir`, or says who holds it.
    pub fn acquire(state_dir: &Path) -> std::io::Result<Result<ControllerLease, Holder>> {
        std::fs::create_dir_all(state_dir)?;
        let path = state_dir.join(FILE_NAME);
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                file.seek(SeekFrom::Start(0))?;
                writeln!(file, "{}", std::process::id())?;
                file.flush()?;
                Ok(Ok(ControllerLease { file, path }))
            }
            Err(TryLockError::WouldBlock) => Ok(Err(holder(&mut file, path))),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Whether another process holds the lease now (without taking it).
    pub fn held_by_other(state_dir: &Path) -> std::io::Result<Option<Holder>> {
        let path = state_dir.join(FILE_NAME);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match file.try_lock_shared() {
            Ok(()) => {
                file.unlock()?;
                Ok(None)
            }
            Err(TryLockError::WouldBlock) => Ok(Some(holder(&mut file, path))),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// The lease file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControllerLease {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

fn holder(file: &mut File, path: PathBuf) -> Holder {
    let mut pid = String::new();
    let _ = file.read_to_string(&mut pid);
    Holder { pid: pid.trim().to_owned(), path }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = std::env::temp_dir().join(format!("pulse-lease-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(ControllerLease::held_by_other(&dir).unwrap(), None, "no file yet");
        let lease = ControllerLease::acquire(&dir).unwrap().expect("free");
        // flock locks belong to the open file description: a second open in this process contends.
        let holder = ControllerLease::held_by_other(&dir).unwrap().expect("held");
        assert_eq!(holder.pid, std::process::id().to_string());
        assert!(holder.to_string().contains(&format!("pid {}", std::process::id())), "{holder}");
        assert!(ControllerLease::acquire(&dir).unwrap().is_err(), "a second controller is refused");
        drop(lease);
        assert_eq!(ControllerLease::held_by_other(&dir).unwrap(), None);
        assert!(ControllerLease::acquire(&dir).unwrap().is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
