//! What runs inside the emulator's tasks when a test needs real processes: a `pulse-demo-app` process
//! per task, started the way ECS starts the task's container and stopped the way ECS stops it; and, when
//! asked ([`DemoTasks::run_controller_with`]), the `pulse-deploy` binary for the controller's image.
//!
//! - The image: `pulse-demo-app:*` runs the demo binary; `pulse-deploy-controller:*` runs the
//!   `pulse-deploy` binary with the container definition's `command` as its arguments (the image's
//!   entrypoint is the binary, `cargo xtask controller-image`), in a fresh working directory of its own
//!   (its container's filesystem); any other image fails to start, as an image that cannot be pulled
//!   does on ECS (the task is stopped with `CannotPullContainerError`).
//! - The controller's AWS access: ECS gives a task its role's credentials through the container
//!   credentials endpoint; here `AWS_CONTAINER_CREDENTIALS_FULL_URI` points at an endpoint served next to
//!   the metadata endpoint, answering the access key [`CONTROLLER_ACCESS_KEY`] (which names the caller in
//!   the emulator's API log), and `AWS_ENDPOINT_URL` sends every AWS call to the emulator, the one
//!   setting that is the emulator's, not ECS's. Its stdout and stderr are kept ([`DemoTasks::controller_output`]).
//! - The environment is the container definition's: its `environment`, its `secrets` read from Secrets
//!   Manager (`GetSecretValue`, as the execution role does), and `ECS_CONTAINER_METADATA_URI_V4`
//!   pointing at a task metadata endpoint served here (`GET .../task` answers the task ARN, which the
//!   demo app takes as its instance id, as on Fargate).
//! - The network: an `awsvpc` task has its own network namespace, in which `0.0.0.0` is its ENI's
//!   address. Host processes share one namespace, so the stand-in sets `PULSE_BIND_ADDRESS` to the
//!   task's ENI address (a loopback address: the fixture's subnets are in `127.0.0.0/8`).
//! - Stopping (scale-in, retire): SIGTERM, then SIGKILL after the container's `stopTimeout`, as ECS
//!   does; [`DataPlane::stopping`] returns once the process has exited.
//! - A process that exits on its own (a crash, a bad configuration) stops its task: `StopTask` with
//!   ECS's reason "Essential container in task exited", so the scheduler stand-in replaces it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::types::{ContainerDefinition, Task};
use pulse_deploy_aws::AwsConfig;
use pulse_deploy_core::Endpoint;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;

use super::scheduler::DataPlane;
use super::CLUSTER;

/// The image prefix this data plane can run.
pub(crate) const DEMO_IMAGE_PREFIX: &str = "pulse-demo-app:";

/// The image prefix of the controller (`cargo xtask controller-image` builds `pulse-deploy-controller:local`).
pub(crate) const CONTROLLER_IMAGE_PREFIX: &str = "pulse-deploy-controller:";

/// The access key id of the controller task role's credentials.
pub(crate) const CONTROLLER_ACCESS_KEY: &str = "controller-task-role";

/// One task's process.
#[derive(Debug)]
struct TaskProcess {
    pid: u32,
    version: String,
    endpoint: Endpoint,
    /// Set before the stand-in stops the task itself (the exit is then not a crash).
    stop_requested: Arc<AtomicBool>,
    exited: watch::Receiver<bool>,
    stop_timeout: Duration,
}

/// The clients the data plane calls, set when the emulator starts.
#[derive(Debug)]
struct Clients {
    ecs: aws_sdk_ecs::Client,
    secrets: aws_sdk_secretsmanager::Client,
    endpoint: String,
}

/// `pulse-demo-app` processes as the tasks' data plane.
#[derive(Debug)]
pub(crate) struct DemoTasks {
    binary: PathBuf,
    controller: OnceLock<PathBuf>,
    controller_output: Arc<Mutex<Vec<String>>>,
    clients: OnceLock<Clients>,
    tasks: Mutex<HashMap<String, TaskProcess>>,
    definitions: tokio::sync::Mutex<HashMap<String, ContainerDefinition>>,
    started: Mutex<Vec<String>>,
}

impl DemoTasks {
    /// A data plane running `binary` (a built `pulse-demo-app`).
    pub(crate) fn new(binary: PathBuf) -> Self {
        DemoTasks {
            binary,
            controller: OnceLock::new(),
            controller_output: Arc::default(),
            clients: OnceLock::new(),
            tasks: Mutex::new(HashMap::new()),
            definitions: tokio::sync::Mutex::new(HashMap::new()),
            started: Mutex::new(Vec::new()),
        }
    }

    /// From now on also runs the controller's image, with `binary` (a built `pulse-deploy`).
    pub(crate) fn run_controller_with(&self, binary: PathBuf) {
        let _ = self.controller.set(binary);
    }

    /// Every line the controller's processes printed so far (stdout and stderr).
    pub(crate) fn controller_output(&self) -> Vec<String> {
        self.controller_output.lock().expect("output").clone()
    }

    fn clients(&self) -> &Clients {
        self.clients.get().expect("the emulator connects the data plane before starting tasks")
    }

    /// Task ARNs whose process runs now, with their version and endpoint.
    pub(crate) fn running(&self) -> Vec<(String, String, Endpoint)> {
        let tasks = self.tasks.lock().expect("tasks");
        let mut out: Vec<_> = tasks
            .iter()
            .filter(|(_, p)| !*p.exited.borrow())
            .map(|(arn, p)| (arn.clone(), p.version.clone(), p.endpoint.clone()))
            .collect();
        out.sort();
        out
    }

    /// Every task ARN a process was started for, in order.
    pub(crate) fn started_tasks(&self) -> Vec<String> {
        self.started.lock().expect("started").clone()
    }

    /// Kills the task's process with SIGKILL, as a crash would; ECS (the stand-ins) then stops the task
    /// and starts a replacement.
    pub(crate) fn crash(&self, task_arn: &str) {
        let tasks = self.tasks.lock().expect("tasks");
        let p = tasks.get(task_arn).unwrap_or_else(|| panic!("no process for task {task_arn}"));
        signal(p.pid, rustix::process::Signal::KILL);
    }

    async fn container(&self, task_definition: &str) -> Option<ContainerDefinition> {
        let mut cache = self.definitions.lock().await;
        if let Some(c) = cache.get(task_definition) {
            return Some(c.clone());
        }
        let out = self.clients().ecs.describe_task_definition().task_definition(task_definition).send().await;
        let container = out.ok()?.task_definition()?.container_definitions().first()?.clone();
        cache.insert(task_definition.to_owned(), container.clone());
        Some(container)
    }

    /// Stops the task as ECS does when its essential container exits or cannot start.
    async fn stop_task(&self, task_arn: &str, reason: String) {
        let r = self.clients().ecs.stop_task().cluster(CLUSTER).task(task_arn).reason(reason).send().await;
        if let Err(e) = r {
            eprintln!("demo tasks: StopTask {task_arn}: {e:?}");
        }
    }

    async fn start(&self, task: &Task) -> Result<(), String> {
        let arn = task.task_arn().ok_or("no task ARN")?.to_owned();
        let container = self
            .container(task.task_definition_arn().unwrap_or_default())
            .await
            .ok_or("CannotStartContainerError: the task definition cannot be read")?;
        let image = container.image().unwrap_or_default();
        let controller = match self.controller.get() {
            Some(binary) if image.starts_with(CONTROLLER_IMAGE_PREFIX) => Some(binary.clone()),
            _ if image.starts_with(DEMO_IMAGE_PREFIX) => None,
            _ => {
                return Err(format!(
                    "CannotPullContainerError: pull image manifest has been retried 5 time(s): {image}: not found"
                ))
            }
        };
        let ip = pulse_deploy_aws::ecs::tasks::private_ip(task).ok_or("no ENI address")?.to_owned();
        let port = match controller {
            Some(_) => 0, // the controller serves nothing
            None => container.port_mappings().first().and_then(|m| m.container_port()).ok_or("no port")?,
        };
        let mut env: Vec<(String, String)> = container
            .environment()
            .iter()
            .filter_map(|kv| Some((kv.name()?.to_owned(), kv.value().unwrap_or_default().to_owned())))
            .collect();
        for secret in container.secrets() {
            let value = self
                .clients()
                .secrets
                .get_secret_value()
                .secret_id(secret.value_from())
                .send()
                .await
                .map_err(|e| format!("ResourceInitializationError: unable to pull secrets: {e}"))?;
            env.push((secret.name().to_owned(), value.secret_string().unwrap_or_default().to_owned()));
        }
        let version = match controller {
            Some(_) => "controller".to_owned(),
            None => {
                env.iter().find(|(k, _)| k == "PULSE_VERSION").map(|(_, v)| v.clone()).unwrap_or_default()
            }
        };
        let (metadata, credentials) = metadata_endpoint(&arn).await;
        env.push(("ECS_CONTAINER_METADATA_URI_V4".into(), metadata));
        let short = arn.rsplit('/').next().unwrap_or(&arn).chars().take(8).collect::<String>();
        let (program, mut command) = match &controller {
            None => {
                env.push(("PULSE_BIND_ADDRESS".into(), ip.clone()));
                let mut c = tokio::process::Command::new(&self.binary);
                c.stdout(std::process::Stdio::null());
                (self.binary.clone(), c)
            }
            Some(binary) => {
                env.push(("AWS_CONTAINER_CREDENTIALS_FULL_URI".into(), credentials));
                env.push(("AWS_ENDPOINT_URL".into(), self.clients().endpoint.clone()));
                let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ecs-tasks").join(&short);
                std::fs::create_dir_all(&dir).map_err(|e| format!("CannotStartContainerError: {e}"))?;
                let mut c = tokio::process::Command::new(binary);
                c.args(container.command()).current_dir(dir).stdout(std::process::Stdio::piped());
                (binary.clone(), c)
            }
        };
        let mut child = command
            .env_clear()
            .envs(env)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("CannotStartContainerError: {}: {e}", program.display()))?;
        let pid = child.id().ok_or("the process exited at once")?;
        let prefix = format!("[{version} {short} {ip}]");
        let keep = controller.is_some().then(|| self.controller_output.clone());
        if let Some(stderr) = child.stderr.take() {
            echo(stderr, prefix.clone(), keep.clone());
        }
        if let Some(stdout) = child.stdout.take() {
            echo(stdout, prefix.clone(), keep);
        }
        let stop_requested = Arc::new(AtomicBool::new(false));
        let (exited_tx, exited) = watch::channel(false);
        let stop_timeout = Duration::from_secs(container.stop_timeout().unwrap_or(30).max(1) as u64);
        self.tasks.lock().expect("tasks").insert(
            arn.clone(),
            TaskProcess {
                pid,
                version,
                endpoint: Endpoint::new(&ip, port as u16),
                stop_requested: stop_requested.clone(),
                exited,
                stop_timeout,
            },
        );
        self.started.lock().expect("started").push(arn.clone());
        let ecs = self.clients().ecs.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = exited_tx.send(true);
            if !stop_requested.load(Ordering::SeqCst) {
                let code = status.ok().and_then(|s| s.code());
                eprintln!("{prefix} exited on its own (code {code:?}): stopping its task");
                let reason = format!("Essential container in task exited (exit code {code:?})");
                if let Err(e) = ecs.stop_task().cluster(CLUSTER).task(&arn).reason(reason).send().await {
                    eprintln!("demo tasks: StopTask {arn}: {e:?}");
                }
            }
        });
        Ok(())
    }
}

/// Prints each line of a task's output with its prefix (and keeps it in `keep`).
fn echo(
    out: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    prefix: String,
    keep: Option<Arc<Mutex<Vec<String>>>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("{prefix} {line}");
            if let Some(k) = &keep {
                k.lock().expect("output").push(line);
            }
        }
    });
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Serves the ECS task metadata endpoint (v4) of one task on a loopback port: `GET .../task` answers the
/// task's ARN; and its container credentials endpoint: `GET /v2/credentials/...` answers the task role's
/// credentials ([`CONTROLLER_ACCESS_KEY`]). Returns both URIs. The server lives as long as the test's
/// runtime.
async fn metadata_endpoint(task_arn: &str) -> (String, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind metadata endpoint");
    let addr = listener.local_addr().expect("addr");
    let body = serde_json::json!({
        "Cluster": CLUSTER,
        "TaskARN": task_arn,
        "DesiredStatus": "RUNNING",
        "KnownStatus": "RUNNING",
        "LaunchType": "FARGATE",
    })
    .to_string();
    let credentials = serde_json::json!({
        "AccessKeyId": CONTROLLER_ACCESS_KEY,
        "SecretAccessKey": "emulator",
        "Token": "emulator-session",
        "Expiration": "2099-01-01T00:00:00Z",
        "RoleArn": "arn:aws:iam::123456789012:role/pulse-tests-controller",
    })
    .to_string();
    // Detached: the server lives as long as the test's runtime.
    drop(tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let (task, credentials) = (body.clone(), credentials.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split(' ').nth(1).unwrap_or_default();
                let body = if path.starts_with("/v2/credentials/") { credentials } else { task };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    }));
    let id = task_arn.rsplit('/').next().unwrap_or("task");
    (format!("http://{addr}/v4/{id}"), format!("http://{addr}/v2/credentials/{id}"))
}

#[async_trait]
impl DataPlane for DemoTasks {
    fn connect(&self, aws: &AwsConfig) {
        let endpoint = aws.endpoint_url().unwrap_or_default().to_owned();
        let _ = self.clients.set(Clients { ecs: aws.ecs(), secrets: aws.secrets_manager(), endpoint });
    }

    async fn started(&self, task: &Task) {
        if let Err(reason) = self.start(task).await {
            let arn = task.task_arn().unwrap_or_default();
            eprintln!("demo tasks: task {arn} cannot start: {reason}");
            self.stop_task(arn, reason).await;
        }
    }

    async fn stopping(&self, task: &Task) {
        let Some(arn) = task.task_arn() else { return };
        let found = {
            let tasks = self.tasks.lock().expect("tasks");
            tasks.get(arn).map(|p| {
                p.stop_requested.store(true, Ordering::SeqCst);
                (p.pid, p.exited.clone(), p.stop_timeout)
            })
        };
        let Some((pid, mut exited, stop_timeout)) = found else { return };
        signal(pid, rustix::process::Signal::TERM);
        if tokio::time::timeout(stop_timeout, exited.wait_for(|e| *e)).await.is_err() {
            eprintln!("demo tasks: {arn} did not exit {stop_timeout:?} after SIGTERM: SIGKILL");
            signal(pid, rustix::process::Signal::KILL);
            let _ = exited.wait_for(|e| *e).await;
        }
    }
}
