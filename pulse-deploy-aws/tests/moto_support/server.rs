//! moto from the pinned virtualenv on a random loopback port, polled until it answers and killed on drop.
//! It runs through `moto_like_aws.py` (moto's server with two AWS behaviours moto lacks: task addresses
//! from the subnet, target health from a real health check), with the interpreter of `moto_server`.
//! With `CI=true` a missing `moto_server` fails loudly; elsewhere the tests skip.
//! The launcher logs every API call with the access key that signed it; [`MotoServer::calls_by`] counts
//! them per caller (how the e2e counts the calls of the `pulse-deploy` processes, which no in-process
//! layer sees).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `moto_server`.
#[derive(Debug)]
pub(crate) struct MotoServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// API calls per (access key id, action), from the launcher's log.
    calls: Arc<Mutex<BTreeMap<(String, String), u32>>>,
}

/// Where `moto_server` is: `PULSE_MOTO_BIN`, else `.venv/bin/moto_server` at the workspace root (put
/// there by `cargo xtask install-tools`).
pub(crate) fn moto_bin() -> PathBuf {
    std::env::var_os("PULSE_MOTO_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server"))
}

/// The fixture's launcher of moto's server (see its docstring).
pub(crate) fn launcher() -> PathBuf {
    // Through the workspace root: this fixture is also compiled into the `tests` crate's AWS e2e.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pulse-deploy-aws/tests/moto_support/moto_like_aws.py")
}

/// The Python interpreter of a `moto_server` console script: its `#!` line.
fn interpreter(bin: &std::path::Path) -> PathBuf {
    let text = std::fs::read(bin).unwrap_or_else(|e| panic!("reading {}: {e}", bin.display()));
    let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(first);
    let python = line.strip_prefix("#!").map(str::trim).filter(|p| !p.is_empty() && !p.contains(' '));
    PathBuf::from(python.unwrap_or_else(|| {
        panic!(
            "{} does not start with `#!/path/to/python`: point PULSE_MOTO_BIN at the moto_server script that \
             pip installed",
            bin.display()
        )
    }))
}

impl MotoServer {
    /// Starts moto, or returns `None` (with the reason printed) when it is not installed outside CI.
    pub(crate) fn start() -> Option<MotoServer> {
        let bin = moto_bin();
        if !bin.exists() {
            let msg = format!("moto_server not found at {} (run `cargo xtask install-tools`)", bin.display());
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{msg}");
            }
            eprintln!("SKIPPED: {msg}");
            return None;
        }
        let python = interpreter(&bin);
        let mut child = Command::new(&python)
            .arg(launcher())
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} {}: {e}", python.display(), launcher().display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::env::var_os("PULSE_MOTO_LOG").is_some();
        let calls = Arc::new(Mutex::new(BTreeMap::new()));
        let counted = calls.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(call) = line.strip_prefix("pulse-api-call ") {
                    if let Some((key, action)) = call.split_once(' ') {
                        *counted
                            .lock()
                            .expect("calls")
                            .entry((key.to_owned(), action.to_owned()))
                            .or_insert(0) += 1;
                    }
                    continue;
                }
                if !sent {
                    if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
                        let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                        if let Ok(port) = port.parse::<u16>() {
                            let _ = tx.send(port);
                            sent = true;
                        }
                    }
                }
                // Keep draining stderr so moto never blocks on a full pipe (PULSE_MOTO_LOG=1 shows it).
                if log {
                    eprintln!("moto: {line}");
                }
            }
        });
        let port =
            rx.recv_timeout(Duration::from_secs(30)).expect("moto_server printed its port within 30 s");
        let server = MotoServer { child, port, calls };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.get("/moto-api/data.json").is_err() {
            assert!(Instant::now() < deadline, "moto_server did not answer on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        // moto advances a task one lifecycle step per DescribeTasks: tasks change state only when the
        // stand-in scheduler says so.
        server
            .post_json(
                "/moto-api/state-manager/set-transition",
                r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#,
            )
            .expect("setting moto's task transition to manual");
        Some(server)
    }

    /// The API calls signed with `access_key_id` so far, per action.
    pub(crate) fn calls_by(&self, access_key_id: &str) -> BTreeMap<String, u32> {
        let calls = self.calls.lock().expect("calls");
        calls.iter().filter(|((k, _), _)| k == access_key_id).map(|((_, a), n)| (a.clone(), *n)).collect()
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn request(&self, raw: String) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(raw.as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        if !out.starts_with("HTTP/1.1 2") && !out.starts_with("HTTP/1.0 2") {
            return Err(std::io::Error::other(format!(
                "moto answered: {}",
                out.lines().next().unwrap_or("")
            )));
        }
        Ok(out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
    }

    /// GET a path of moto's own API.
    pub(crate) fn get(&self, path: &str) -> std::io::Result<String> {
        self.request(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
    }

    /// POST JSON to a path of moto's own API.
    pub(crate) fn post_json(&self, path: &str, body: &str) -> std::io::Result<String> {
        self.request(format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
    }

    /// One EC2 query-API call (the crate has no EC2 SDK: the fixture only needs a VPC, subnets and a
    /// security group). moto routes it by the credential scope and does not check the signature.
    pub(crate) fn ec2(&self, params: &[(&str, &str)]) -> String {
        let mut body = String::from("Version=2016-11-15");
        for (k, v) in params {
            body.push('&');
            body.push_str(k);
            body.push('=');
            body.push_str(&v.replace(' ', "%20").replace('/', "%2F"));
        }
        self.request(format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
        .unwrap_or_else(|e| panic!("EC2 {params:?}: {e}"))
    }
}

/// The text of the first `<tag>...</tag>` in an XML answer.
pub(crate) fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).expect("closing tag") + start;
    xml[start..end].to_owned()
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
