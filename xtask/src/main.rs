//! Project automation for pulse-deploy, run as `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! Each command lives in its own module; this file only dispatches. Run `cargo xtask help`.

mod ci;
mod util;

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <command>

Commands:
  ci              Everything CI runs: fmt check, clippy (warnings denied), every test. Start here.
  help            This text.

Environment:
  CI=true         Tests that need Docker or Envoy fail loudly instead of being skipped.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    let result = match cmd {
        "ci" => ci::run(rest),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`; run `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
