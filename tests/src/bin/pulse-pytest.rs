//! `pulse-pytest FOLDER [PYTEST ARGS]`: runs a Python package's tests in a container of the venv image
//! (built or found by `python_image::ensure_images`): the folder is copied in, installed without
//! dependencies (they are in the image) and `python -m pytest` runs there, its output printed here.
//!
//! Exit status: pytest's 0 passes; pytest's 5 (no tests collected) is a failure with an explanation,
//! since a test run that ran nothing proves nothing; anything else fails. Run by `cargo xtask pytest`.

use std::process::ExitCode;

/// pytest's exit code when it collected no test.
const PYTEST_NO_TESTS: i64 = 5;

#[tokio::main]
async fn main() -> ExitCode {
    pulse_deploy_tests::init_logging();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pulse-pytest: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (folder, pytest_args) = args.split_first().ok_or("usage: pulse-pytest FOLDER [PYTEST ARGS]")?;
    let workspace = pulse_deploy_tests::workspace_root();
    let folder = workspace.join(folder);
    if !folder.join("pyproject.toml").is_file() {
        return Err(format!("{} has no pyproject.toml: it is not a Python package", folder.display()));
    }
    let docker = pulse_deploy_local::docker::connect_docker().await.map_err(|e| e.to_string())?;
    let image = pulse_deploy_tests::python_image::ensure_images(&docker, &workspace).await?;
    let mut script = String::from(
        "set -e; pip install --disable-pip-version-check --no-deps --no-build-isolation --no-index -q . \
         && exec python -m pytest -p no:cacheprovider",
    );
    for a in pytest_args {
        script.push(' ');
        script.push_str(&shell_quote(a));
    }
    let name = format!("pulse-pytest-{}-{:08x}", std::process::id(), rand::random::<u32>());
    eprintln!("pulse-pytest: {} in {image}", folder.display());
    let code = pulse_deploy_tests::python_image::run::run_with_folder(
        &docker,
        &image,
        &name,
        &folder,
        "/work/package",
        &["sh", "-c", &script],
    )
    .await?;
    match code {
        0 => Ok(()),
        PYTEST_NO_TESTS => Err(format!(
            "pytest collected no tests in {} (exit 5). A run that tests nothing is a failure: check that the \
             tests are named test_*.py / test_* and that pyproject.toml's [tool.pytest.ini_options] points at them",
            folder.display()
        )),
        other => Err(format!("pytest failed (exit {other}) in {}", folder.display())),
    }
}

/// Single-quotes `s` for sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
