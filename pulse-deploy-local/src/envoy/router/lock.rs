//! The state directory's lock file: an exclusive `flock` that serialises deployers (processes) changing one
//! router; a deployer that died releases it with its file descriptor.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use pulse_deploy_core::{Error, Result};

use crate::envoy::xds::io_error;

/// Takes the state directory's lock file (an exclusive `flock`), polling until `timeout`.
pub(super) async fn lock_file(path: &Path, timeout: Duration) -> Result<Flock<fs::File>> {
    if path.parent().is_some_and(|dir| !dir.exists()) {
        return Err(Error::NotFound {
            what: format!(
                "router state directory of {} (removed by a shutdown?); build a new EnvoyRouter",
                path.display()
            ),
        });
    }
    let deadline = Instant::now() + timeout;
    loop {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| io_error(path, "open", e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((_, Errno::EWOULDBLOCK)) => {}
            Err((_, e)) => return Err(io_error(path, "lock", e.into())),
        }
        if Instant::now() >= deadline {
            return Err(Error::Conflict {
                message: format!(
                    "another deployer holds {} for longer than {timeout:?}; let it finish or stop it",
                    path.display()
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
