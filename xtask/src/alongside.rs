//! Steps of `cargo xtask ci` that run side by side: each one's output goes to its own log file
//! (`target/xtask-logs/`), printed whole, with the step's banner and duration, once it ends, so that the
//! CI log stays readable. Used for steps that mostly wait (the end-to-end runs wait on drain deadlines,
//! the Python image build on Debian's mirror, the Python tests on their servers) while another step keeps
//! the CPU busy.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::util::{describe, root, target_dir};

/// A step started in the background: one command, or several run one after another.
pub(crate) struct Alongside {
    title: String,
    log: PathBuf,
    started: Instant,
    thread: JoinHandle<Result<(), String>>,
}

impl Alongside {
    /// Starts `cmd` in the workspace root, its stdout and stderr into one log file.
    pub(crate) fn spawn(title: &str, cmd: Command) -> Result<Alongside, String> {
        Self::spawn_chain(title, vec![(title.to_owned(), cmd)])
    }

    /// Starts `cmds` one after another (stopping at the first failure), their output into one log file.
    pub(crate) fn spawn_chain(title: &str, cmds: Vec<(String, Command)>) -> Result<Alongside, String> {
        let dir = target_dir().join("xtask-logs");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let slug: String = title
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .take(48)
            .collect();
        let log = dir.join(format!("{slug}.log"));
        let mut out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        eprintln!("\n==> {title} (alongside; output in {})", log.display());
        let thread = std::thread::spawn(move || {
            for (title, mut cmd) in cmds {
                let started = Instant::now();
                let _ = writeln!(out, "==> {title}\n    $ {}", describe(&cmd));
                let (stdout, stderr) = match (out.try_clone(), out.try_clone()) {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(e), _) | (_, Err(e)) => return Err(format!("{title}: {e}")),
                };
                let status = cmd
                    .current_dir(root())
                    .stdin(Stdio::null())
                    .stdout(stdout)
                    .stderr(stderr)
                    .status()
                    .map_err(|e| format!("{title}: cannot start: {e}"))?;
                let took = started.elapsed().as_secs_f64();
                if !status.success() {
                    return Err(format!("{title} failed ({status}) after {took:.1} s"));
                }
                let _ = writeln!(out, "==> {title}: ok ({took:.1} s)");
            }
            Ok(())
        });
        Ok(Alongside { title: title.to_owned(), log, started: Instant::now(), thread })
    }

    /// Waits for the step, prints its output and whether it passed.
    pub(crate) fn finish(self) -> Result<(), String> {
        let result =
            self.thread.join().unwrap_or_else(|_| Err(format!("{}: its thread panicked", self.title)));
        let took = self.started.elapsed().as_secs_f64();
        let output = std::fs::read_to_string(&self.log).unwrap_or_default();
        eprintln!("\n==> {} (ran alongside): its output\n{}", self.title, output.trim_end());
        match result {
            Ok(()) => {
                eprintln!("==> {}: ok ({took:.1} s)", self.title);
                Ok(())
            }
            Err(e) => Err(format!("{e}; the output is above")),
        }
    }
}

/// Waits for every step in `steps`, then fails with every failure (not only the first).
pub(crate) fn finish_all(steps: Vec<Alongside>) -> Result<(), String> {
    let errors: Vec<String> = steps.into_iter().filter_map(|s| s.finish().err()).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}
