//! `pulse-deploy.toml`: the file a team keeps next to its app — parsed strictly (unknown keys are errors),
//! every value checked before any provider is contacted, and every error naming the file, the line, the
//! field and the fix. [`TEMPLATE`] is what `pulse-deploy init` writes.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pulse_deploy_core::rollout::{RolloutPolicy, ShiftPolicy};
use pulse_deploy_core::{AffinityMode, AppName, Release};
use serde::Deserialize;
use toml::Spanned;

/// The file name `init` writes and every other command reads by default.
pub const FILE_NAME: &str = "pulse-deploy.toml";

/// The commented configuration `init` writes (`{app}`, `{image}`, `{listen}` are filled in).
pub const TEMPLATE: &str = r#"# pulse-deploy configuration. Every key below is optional except `app` and `image`;
# the values shown are the defaults. Unknown keys are errors. Durations: "30s", "5m", "6h".

# Where versions run: "local" (Docker + Envoy on this machine) or "aws" (ECS + ALB, configured from the
# PULSE_AWS_* environment: `terraform output -json environment` of pulse-deploy-aws/terraform, docs/aws.md).
provider = "local"

# The app's name: 1 to 16 of a-z, 0-9 and '-', starting and ending with a letter or digit.
app = "{app}"
# The image every new version runs unless `pulse-deploy deploy VERSION --image ...` says otherwise.
image = "{image}"
# Instances per version.
replicas = 2
# The port the app listens on inside its container.
port = 8000
# The app's health endpoint (200 when it can take new sessions).
health_path = "/health"
# How long a draining version may keep its sessions before it is reaped anyway.
drain_deadline = "6h"
# How long an instance gets to exit after SIGTERM when it is reaped.
stop_grace = "30s"
# How a browser is kept on the version holding its session: "cookie", "key" or "cookie_and_key".
affinity = "cookie_and_key"

# Environment variables of every instance (never put the drain secret here: it is injected).
[env]

[rollout]
# How long a new version may take to become healthy before it is rolled back.
health_timeout = "5m"
# How often the deployer looks at the providers while it waits.
poll_interval = "2s"
# The share of new sessions the new version gets at each step, in percent; the last must be 100.
# [100] switches every new session at once (existing sessions stay where they are either way).
shift_steps = [100]
# How long each step is held before the next one (when shift_steps has several steps).
bake = "30s"

[local]
# Where the Docker and Envoy state lives (relative to this file).
state_dir = ".pulse-deploy"
# The file holding the drain secret (created by `init`, mode 0600; never printed).
secret_file = ".pulse-deploy/drain-secret"
# Envoy's public listener: open http://{listen}/ to reach the app.
listen = "{listen}"
# How often Envoy checks each instance's health.
health_check_interval = "1s"
"#;

/// A configuration error: where, which field, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field, dotted (`rollout.poll_interval`).
    pub field: String,
    /// What is wrong, and the fix.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: `{}`: {}", self.file.display(), self.field, self.message),
            None => write!(f, "{}: `{}`: {}", self.file.display(), self.field, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Which provider runs the versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Docker + Envoy on this machine.
    Local,
    /// ECS + ALB.
    Aws,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    provider: Option<Spanned<ProviderKind>>,
    app: Spanned<String>,
    image: Spanned<String>,
    replicas: Option<Spanned<u32>>,
    port: Option<Spanned<u16>>,
    health_path: Option<Spanned<String>>,
    drain_deadline: Option<Spanned<String>>,
    stop_grace: Option<Spanned<String>>,
    affinity: Option<Spanned<AffinityMode>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    rollout: RawRollout,
    #[serde(default)]
    local: RawLocal,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRollout {
    health_timeout: Option<Spanned<String>>,
    poll_interval: Option<Spanned<String>>,
    shift_steps: Option<Spanned<Vec<u32>>>,
    bake: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocal {
    state_dir: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    health_check_interval: Option<Spanned<String>>,
}

/// The local provider's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSettings {
    /// Docker and Envoy state (absolute).
    pub state_dir: PathBuf,
    /// The drain secret's file (absolute).
    pub secret_file: PathBuf,
    /// Envoy's public listener.
    pub listen: SocketAddr,
    /// Envoy's health-check interval.
    pub health_check_interval: Duration,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// The provider.
    pub provider: ProviderKind,
    /// The app.
    pub app: AppName,
    /// The default image.
    pub image: String,
    /// The rollout policy.
    pub policy: RolloutPolicy,
    /// The local provider's settings.
    pub local: LocalSettings,
    template: ReleaseTemplate,
}

#[derive(Debug, Clone)]
struct ReleaseTemplate {
    replicas: u32,
    port: u16,
    health_path: String,
    drain_deadline: Duration,
    stop_grace: Duration,
    affinity: AffinityMode,
    env: BTreeMap<String, String>,
}

impl Config {
    /// Reads and checks `file`.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_owned(),
            line: None,
            field: "(file)".into(),
            message: format!(
                "cannot read it ({e}); run `pulse-deploy init` to create one, or pass --config PATH"
            ),
        })?;
        Config::parse(file, &text)
    }

    /// The configuration of a controller that has no file: the Terraform module's controller task runs
    /// `pulse-deploy watch` from a `FROM scratch` image, configured by its environment alone. Used only
    /// when `file` does not exist and `PULSE_AWS_APP` is set: `provider = "aws"`, the app from
    /// `PULSE_AWS_APP`, every other key at its default. The image is never used by `watch`, `status` or
    /// `reap` (each version's release comes from AWS, its task definition).
    pub fn from_aws_environment(file: &Path) -> Option<Result<Config, ConfigError>> {
        if file.exists() {
            return None;
        }
        let app = std::env::var("PULSE_AWS_APP").ok().filter(|a| !a.trim().is_empty())?;
        let text = format!(
            "provider = \"aws\"\napp = {}\nimage = \"none:read-from-each-task-definition\"\n",
            toml_string(&app)
        );
        Some(Config::parse(Path::new("(the PULSE_AWS_APP environment)"), &text))
    }

    /// Checks `text` as the contents of `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let at = |span: Option<Range<usize>>, field: &str, message: String| ConfigError {
            file: file.to_owned(),
            line: span.map(|s| line_of(text, s.start)),
            field: field.to_owned(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_owned();
            let field = field_of(&message, text, e.span());
            at(e.span(), &field, fix_for(&message))
        })?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);

        let duration = |v: &Option<Spanned<String>>, field: &str, default: Duration| match v {
            None => Ok(default),
            Some(s) => humantime::parse_duration(s.get_ref()).map_err(|e| {
                at(
                    Some(s.span()),
                    field,
                    format!(
                        "`{}` is not a duration ({e}); write e.g. \"30s\", \"5m\" or \"6h\"",
                        s.get_ref()
                    ),
                )
            }),
        };
        let provider = raw.provider.as_ref().map(|p| *p.get_ref()).unwrap_or(ProviderKind::Local);
        let app = AppName::new(raw.app.get_ref().clone())
            .map_err(|e| at(Some(raw.app.span()), "app", core_message(e)))?;
        if raw.image.get_ref().trim().is_empty() {
            return Err(at(
                Some(raw.image.span()),
                "image",
                "must name an image, e.g. \"my-app:1.4\"".into(),
            ));
        }
        let template = ReleaseTemplate {
            replicas: raw.replicas.as_ref().map(|r| *r.get_ref()).unwrap_or(2),
            port: raw.port.as_ref().map(|r| *r.get_ref()).unwrap_or(8000),
            health_path: raw
                .health_path
                .as_ref()
                .map(|r| r.get_ref().clone())
                .unwrap_or_else(|| "/health".into()),
            drain_deadline: duration(&raw.drain_deadline, "drain_deadline", Duration::from_secs(6 * 3600))?,
            stop_grace: duration(&raw.stop_grace, "stop_grace", Duration::from_secs(30))?,
            affinity: raw.affinity.as_ref().map(|a| *a.get_ref()).unwrap_or_default(),
            env: raw.env.clone(),
        };
        let mut policy = RolloutPolicy {
            health_timeout: duration(
                &raw.rollout.health_timeout,
                "rollout.health_timeout",
                Duration::from_secs(300),
            )?,
            poll_interval: duration(
                &raw.rollout.poll_interval,
                "rollout.poll_interval",
                Duration::from_secs(2),
            )?,
            ..Default::default()
        };
        let bake = duration(&raw.rollout.bake, "rollout.bake", Duration::from_secs(30))?;
        if let Some(steps) = &raw.rollout.shift_steps {
            if steps.get_ref().as_slice() != [100] {
                policy = policy.stepped(steps.get_ref().clone(), bake);
            } else {
                policy.shift = ShiftPolicy::Immediate;
            }
        }
        policy.validate().map_err(|e| {
            let (field, span) = match field_name(&e) {
                f if f.contains("steps") || f.contains("shift") => {
                    ("rollout.shift_steps", raw.rollout.shift_steps.as_ref().map(|s| s.span()))
                }
                f if f.contains("poll") => {
                    ("rollout.poll_interval", raw.rollout.poll_interval.as_ref().map(|s| s.span()))
                }
                f if f.contains("health") => {
                    ("rollout.health_timeout", raw.rollout.health_timeout.as_ref().map(|s| s.span()))
                }
                _ => ("rollout", None),
            };
            at(span, field, core_message(e))
        })?;

        let path = |v: &Option<Spanned<String>>, default: &str| {
            dir.join(v.as_ref().map(|s| s.get_ref().as_str()).unwrap_or(default))
        };
        let listen = match &raw.local.listen {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(s) => s.get_ref().parse().map_err(|_| {
                at(
                    Some(s.span()),
                    "local.listen",
                    format!("`{}` is not an address; write IP:PORT, e.g. \"127.0.0.1:8080\"", s.get_ref()),
                )
            })?,
        };
        let local = LocalSettings {
            state_dir: path(&raw.local.state_dir, ".pulse-deploy"),
            secret_file: path(&raw.local.secret_file, ".pulse-deploy/drain-secret"),
            listen,
            health_check_interval: duration(
                &raw.local.health_check_interval,
                "local.health_check_interval",
                Duration::from_secs(1),
            )?,
        };
        let config = Config {
            file: file.to_owned(),
            provider,
            app,
            image: raw.image.get_ref().clone(),
            policy,
            local,
            template,
        };
        // Check the release fields once now, with the default image, so a bad value is reported here.
        config.release("v0", None).map_err(|e| {
            let field = field_name(&e);
            let key = field.trim_start_matches("release.");
            let span = match key {
                "replicas" => raw.replicas.as_ref().map(|s| s.span()),
                "port" => raw.port.as_ref().map(|s| s.span()),
                "health_path" => raw.health_path.as_ref().map(|s| s.span()),
                "drain_deadline" => raw.drain_deadline.as_ref().map(|s| s.span()),
                "stop_grace" => raw.stop_grace.as_ref().map(|s| s.span()),
                "image" => Some(raw.image.span()),
                _ => None,
            };
            at(span, key, core_message(e))
        })?;
        Ok(config)
    }

    /// How long an instance gets to exit after SIGTERM (`stop_grace`).
    pub fn stop_grace(&self) -> Duration {
        self.template.stop_grace
    }

    /// The app's health path (`health_path`).
    pub fn health_path(&self) -> &str {
        &self.template.health_path
    }

    /// The release of `version` (with `image`, or the configured one).
    pub fn release(&self, version: &str, image: Option<&str>) -> pulse_deploy_core::Result<Release> {
        let t = &self.template;
        let mut b = Release::builder(self.app.as_str(), version, image.unwrap_or(&self.image))
            .replicas(t.replicas)
            .port(t.port)
            .health_path(t.health_path.clone())
            .drain_deadline(t.drain_deadline)
            .stop_grace(t.stop_grace)
            .affinity(t.affinity);
        for (k, v) in &t.env {
            b = b.env(k.clone(), v.clone());
        }
        b.build()
    }
}

fn field_name(e: &pulse_deploy_core::Error) -> String {
    match e {
        pulse_deploy_core::Error::InvalidInput { field, .. } => (*field).to_owned(),
        _ => String::new(),
    }
}

fn core_message(e: pulse_deploy_core::Error) -> String {
    match e {
        pulse_deploy_core::Error::InvalidInput { message, .. } => message,
        other => other.to_string(),
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The field a toml error is about: the key named in the message, else the key on the error's line.
fn field_of(message: &str, text: &str, span: Option<Range<usize>>) -> String {
    if let Some(rest) = message.split("unknown field `").nth(1) {
        return rest.split('`').next().unwrap_or_default().to_owned();
    }
    if let Some(rest) = message.split("missing field `").nth(1) {
        return rest.split('`').next().unwrap_or_default().to_owned();
    }
    let Some(span) = span else { return "(file)".into() };
    let start = text[..span.start.min(text.len())].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[start..].lines().next().unwrap_or_default();
    line.split('=')
        .next()
        .map(|k| k.trim().trim_matches(['[', ']']).to_owned())
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "(file)".into())
}

/// The toml message with a fix appended.
fn fix_for(message: &str) -> String {
    let fix = if message.contains("unknown field") {
        "remove it or correct its spelling"
    } else if message.contains("missing field") {
        "add it (see `pulse-deploy init` for every key and its default)"
    } else if message.contains("unknown variant") {
        "use one of the values listed"
    } else {
        "correct the value (see `pulse-deploy init` for every key and its default)"
    };
    format!("{message}; {fix}")
}

/// `value` as a TOML basic string.
fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/tmp/pulse-deploy.toml"), text)
    }

    #[test]
    fn the_template_parses_with_working_defaults() {
        let text = TEMPLATE
            .replace("{app}", "shop")
            .replace("{image}", "shop:1")
            .replace("{listen}", "127.0.0.1:8080");
        let c = parse(&text).unwrap();
        assert_eq!(c.app.as_str(), "shop");
        assert_eq!(c.local.listen.port(), 8080);
        let r = c.release("v1", None).unwrap();
        assert_eq!((r.replicas, r.port, r.image.as_str()), (2, 8000, "shop:1"));
    }

    #[test]
    fn errors_name_the_file_line_field_and_fix() {
        let e = parse("app = \"shop\"\nimage = \"x\"\nreplicaz = 3\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(3), "replicaz"));
        assert!(e.to_string().starts_with("/tmp/pulse-deploy.toml:3: `replicaz`"), "{e}");
        assert!(e.message.contains("remove it"), "{e}");

        let e = parse("app = \"shop\"\nimage = \"x\"\n[rollout]\npoll_interval = \"soon\"\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(4), "rollout.poll_interval"), "{e}");

        let e = parse("app = \"Shop!\"\nimage = \"x\"\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(1), "app"), "{e}");

        let e = parse("app = \"shop\"\nimage = \"x\"\nreplicas = 0\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(3), "replicas"), "{e}");

        let e = parse("app = \"shop\"\n").unwrap_err();
        assert_eq!(e.field, "image", "{e}");

        let e = parse("app = \"shop\"\nimage = \"x\"\n[local]\nlisten = \"localhost\"\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(4), "local.listen"), "{e}");
    }
}
