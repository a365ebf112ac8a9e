//! Admin paths stay unreachable from the public side of the real Envoy router in every encoding the
//! servers behind it decode: the example Pulse app (`examples/pulse-app/` with the drain plugin; Starlette
//! routes on the percent-decoded path, so `/_pulse/%61dmin/drain` *is* the drain endpoint when sent to
//! it directly) and the Rust demo app (`pulse-server-drain`, which routes on the raw path), each deployed
//! by the Docker orchestrator and attached to one `EnvoyRouter`.
//!
//! Every variant of `/_pulse/admin/drain` and `/_pulse/admin/status` (percent-encoded letters, `%5F`,
//! `%2F` for slashes, repeated slashes, dot segments plain and encoded, upper case, a trailing slash,
//! `;params`, a query) is sent through Envoy as raw bytes (an HTTP client library would normalise some of
//! them before sending) with the correct Bearer token. Each must get Envoy's own refusal (the admin
//! route's direct `404 not found`), and after each drain attempt the app, asked directly, must still be
//! `serving`. Sent directly to the Pulse app, the decoded variants do reach its handler: that is checked
//! too, so the probes are known to be ones that matter.
//!
//! Needs Docker and Envoy (`PULSE_ENVOY_BIN`); with `CI=true` either missing fails the test, otherwise it
//! skips and says why.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use pulse_deploy_core::{
    AppName, InstanceState, Orchestrator, Release, Secret, Target, TrafficRouter, VersionRoute, Weights,
};
use pulse_deploy_local::docker::{build_demo_image, connect_docker, labels, DockerOrchestrator, DEMO_IMAGE};
use pulse_deploy_local::envoy::locate_envoy;
use pulse_deploy_local::EnvoyRouter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Envoy's answers that refuse a request without forwarding it: the admin route's direct response
/// (`pulse-deploy-local/src/envoy/config.rs`, `pulse-admin-blocked`), and its HTTP codec's rejection of a
/// request target that is not a path (`%2F_pulse/...`). The apps' own answers differ (uvicorn: JSON or
/// `Invalid HTTP request received.`; the Rust server: JSON).
const REFUSALS: [(u16, &str); 2] = [(404, "not found\n"), (400, "Bad Request")];

/// The variants of `/_pulse/admin/{endpoint}` probed; the first is the plain path.
fn variants(endpoint: &str) -> Vec<String> {
    let e = endpoint;
    let first = &e[..1];
    let rest = &e[1..];
    let first_hex = format!("%{:02x}", first.as_bytes()[0]);
    let upper = e.to_uppercase();
    vec![
        format!("/_pulse/admin/{e}"),
        // percent-encoded letters and underscore (lower and upper hex digits)
        format!("/_pulse/%61dmin/{e}"),
        format!("/_pulse/%61%64%6D%69%6E/{e}"),
        format!("/_pulse/admin/{first_hex}{rest}"),
        format!("/%5Fpulse/admin/{e}"),
        format!("/%5fpulse/admin/{e}"),
        format!("/%5F%70%75%6c%73%65/%61%64%6d%69%6e/{first_hex}{rest}"),
        // encoded slashes
        format!("/_pulse%2Fadmin/{e}"),
        format!("/_pulse%2fadmin%2f{e}"),
        format!("/_pulse/admin%2F{e}"),
        format!("%2F_pulse/admin/{e}"),
        // repeated slashes
        format!("//_pulse/admin/{e}"),
        format!("/_pulse//admin/{e}"),
        format!("///_pulse///admin///{e}"),
        // dot segments, plain and encoded
        format!("/x/../_pulse/admin/{e}"),
        format!("/_pulse/./admin/{e}"),
        format!("/_pulse/x/../admin/{e}"),
        format!("/x/%2e%2e/_pulse/admin/{e}"),
        format!("/x/%2E%2E/_pulse/admin/{e}"),
        format!("/x/.%2e/_pulse/admin/{e}"),
        format!("/_pulse/%2e/admin/{e}"),
        format!("/x%2F..%2F_pulse/admin/{e}"),
        // case
        format!("/_PULSE/ADMIN/{upper}"),
        format!("/_Pulse/Admin/{e}"),
        format!("/_pulse/ADMIN/{e}"),
        format!("/_pulse/%41dmin/{e}"),
        // trailing slash, path parameters, query
        format!("/_pulse/admin/{e}/"),
        format!("/_pulse/admin/{e};x=1"),
        format!("/_pulse/admin;x=1/{e}"),
        format!("/_pulse/admin/{e}?x=1"),
        format!("/_pulse/admin/{e}%3Fx=1"),
        // backslash (some normalisers turn it into a slash)
        format!("/_pulse/admin%5C{e}"),
    ]
}

/// A raw HTTP/1.1 request (the path sent byte for byte) and its status and body.
async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    token: &str,
) -> Result<(u16, String), String> {
    let body = if method == "POST" { "{}" } else { "" };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        s.write_all(request.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
        // Read the head, then exactly Content-Length bytes of body (a server may keep the connection
        // open despite `Connection: close`); without a length, read to the end.
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
            answer.extend_from_slice(&buf[..n]);
            let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4) else {
                if n == 0 {
                    return Err(format!("connection closed before the end of the head: {answer:?}"));
                }
                continue;
            };
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let wanted = match length {
                _ if method == "HEAD" => Some(0),
                l => l,
            };
            match wanted {
                Some(l) if answer.len() >= end + l => {
                    answer.truncate(end + l);
                    return Ok(answer);
                }
                _ if n == 0 => return Ok(answer),
                _ => continue,
            }
        }
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| format!("{method} {path}: no answer within 10 s"))??;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) =
        text.split_once("\r\n\r\n").ok_or(format!("{method} {path}: no header end: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(format!("{method} {path}: no status line: {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// One app behind the router: its name (the Host header that selects it) and its instance's address.
struct Deployed {
    app: AppName,
    direct: SocketAddr,
}

/// The `state` the instance at `direct` reports on its status endpoint (asked directly, not through
/// Envoy).
async fn state_of(direct: SocketAddr, token: &str) -> Result<String, String> {
    let (status, body) = raw(direct, "GET", "/_pulse/admin/status", "localhost", token).await?;
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("status body {body:?} (status {status}): {e}"))?;
    v["state"].as_str().map(str::to_owned).ok_or(format!("status without state: {body}"))
}

async fn deploy(
    o: &DockerOrchestrator,
    router: &EnvoyRouter,
    release: &Release,
    health_path: &str,
) -> Result<Deployed, String> {
    o.deploy(release).await.map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(90);
    let instance = loop {
        let found = o.versions(&release.app).await.ok().and_then(|mut v| v.pop()).and_then(|v| {
            v.instances.into_iter().find(|i| i.state == InstanceState::Running && i.endpoint.is_some())
        });
        if let Some(i) = found {
            let ep = i.endpoint.clone().expect("endpoint");
            let addr: SocketAddr =
                format!("{}:{}", ep.host, ep.port).parse().map_err(|e| format!("{ep:?}: {e}"))?;
            if raw(addr, "GET", health_path, "localhost", "-").await.is_ok_and(|(s, _)| s == 200) {
                break i;
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{} did not answer {health_path} within 90 s", release.app));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let endpoint = instance.endpoint.clone().expect("endpoint");
    let direct = format!("{}:{}", endpoint.host, endpoint.port).parse().map_err(|e| format!("{e}"))?;
    let route = VersionRoute::for_release(release, vec![Target { instance: instance.id.clone(), endpoint }]);
    router.attach(&route).await.map_err(|e| e.to_string())?;
    router
        .set_weights(&release.app, &Weights::all_to(release.version.clone()))
        .await
        .map_err(|e| e.to_string())?;
    // Routed once Envoy answers the health path for this Host from the instance.
    let public = router.listener_addr();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !raw(public, "GET", health_path, release.app.as_str(), "-").await.is_ok_and(|(s, _)| s == 200) {
        if Instant::now() > deadline {
            return Err(format!("Envoy did not route {health_path} of {} within 30 s", release.app));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Deployed { app: release.app.clone(), direct })
}

/// Sends `method path` through Envoy (`public`) to `d` with the correct token: it must get one of
/// Envoy's refusals, and after a POST the app, asked directly, must still be `serving`.
async fn probe(
    public: SocketAddr,
    d: &Deployed,
    method: &str,
    path: &str,
    token: &str,
) -> Result<(), String> {
    let answer = raw(public, method, path, d.app.as_str(), token).await?;
    let refused =
        REFUSALS.iter().any(|(code, body)| answer.0 == *code && (method == "HEAD" || answer.1 == *body));
    if !refused {
        return Err(format!(
            "{method} {path} (Host {}) through Envoy answered {} {:?}, not one of Envoy's refusals {REFUSALS:?}",
            d.app, answer.0, answer.1
        ));
    }
    if method == "POST" {
        let state = state_of(d.direct, token).await?;
        if state != "serving" {
            return Err(format!("after POST {path} through Envoy, {} is {state}", d.app));
        }
    }
    Ok(())
}

#[tokio::test]
async fn encoded_admin_paths_never_reach_the_apps_through_envoy() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let docker = match connect_docker().await {
        Ok(d) => d,
        Err(e) if ci => panic!("CI=true and Docker is unreachable, so the admin path test cannot run: {e}"),
        Err(e) => return eprintln!("SKIPPED: Docker is unreachable ({e})"),
    };
    if let Err(e) = locate_envoy(None) {
        if ci {
            panic!("CI=true and Envoy is missing, so the admin path test cannot run: {e}");
        }
        return eprintln!("SKIPPED: Envoy is missing ({e})");
    }
    let workspace = pulse_deploy_tests::workspace_root();
    let pulse_image = pulse_deploy_tests::python_image::ensure_app_image(&docker, &workspace)
        .await
        .expect("Pulse app image");
    build_demo_image(&docker, &workspace, DEMO_IMAGE).await.expect("demo app image");

    let suffix: String = (0..5).map(|_| (b'a' + rand::random::<u8>() % 26) as char).collect();
    let dir = std::env::temp_dir().join(format!("pulse-admin-paths-{suffix}"));
    let token = format!("admin-paths-{:032x}", rand::random::<u128>());
    let o = DockerOrchestrator::builder()
        .drain_secret(Secret::new("test", token.clone()).unwrap())
        .state_dir(dir.join("docker"))
        .docker(docker.clone())
        .retire_wait(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    let router = EnvoyRouter::builder(dir.join("envoy"))
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .health_check_interval(Duration::from_millis(300))
        .build()
        .await
        .expect("start Envoy");
    let pulse_app = AppName::new(format!("adm-py-{suffix}")).unwrap();
    let demo_app = AppName::new(format!("adm-rs-{suffix}")).unwrap();

    let outcome = async {
        let pulse_release = Release::builder(pulse_app.as_str(), "v1", pulse_image.as_str())
            .port(8000)
            .health_path("/_pulse/health")
            .env("PULSE_SECRET", format!("session-secret-{:016x}", rand::random::<u64>()))
            .build()
            .map_err(|e| e.to_string())?;
        let demo_release = Release::builder(demo_app.as_str(), "v1", DEMO_IMAGE)
            .port(8000)
            .build()
            .map_err(|e| e.to_string())?;
        let demo_health = demo_release.health_path.clone();
        let apps = [
            deploy(&o, &router, &pulse_release, "/_pulse/health").await?,
            deploy(&o, &router, &demo_release, &demo_health).await?,
        ];
        // The premise: sent directly, the Pulse app (Starlette) routes on the decoded path, so an encoded
        // variant reaches its admin handler; the Rust server does not decode.
        let (status, _) = raw(apps[0].direct, "GET", "/_pulse/%61dmin/status", "localhost", &token).await?;
        if status != 200 {
            return Err(format!(
                "premise: GET /_pulse/%61dmin/status sent directly to the Pulse app answered {status}, not 200 \
                 (does Starlette no longer decode the path? then this test's probes need a review)"
            ));
        }
        let mut decoded_directly = Vec::new();
        for path in variants("status") {
            if raw(apps[0].direct, "GET", &path, "localhost", &token).await.is_ok_and(|(s, _)| s == 200) {
                decoded_directly.push(path);
            }
        }
        eprintln!("reach the Pulse app's status handler when sent directly: {decoded_directly:?}");

        let public = router.listener_addr();
        let mut probes = 0;
        for d in &apps {
            for (method, endpoint) in [("POST", "drain"), ("GET", "status"), ("HEAD", "status")] {
                for path in variants(endpoint) {
                    probe(public, d, method, &path, &token).await?;
                    probes += 1;
                }
            }
        }
        // The direct control: the plain drain path with the token does drain (so "serving" above means
        // something).
        for d in &apps {
            let (status, body) = raw(d.direct, "POST", "/_pulse/admin/drain", "localhost", &token).await?;
            let state = state_of(d.direct, &token).await?;
            if status != 200 && status != 202 || state == "serving" {
                return Err(format!("direct drain of {}: {status} {body}, then {state}", d.app));
            }
        }
        eprintln!("{probes} admin path probes through Envoy, all refused, both apps still serving after each");
        Ok::<(), String>(())
    }
    .await;

    for app in [&pulse_app, &demo_app] {
        let filters = HashMap::from([("label", vec![format!("{}={app}", labels::APP)])]);
        let opts = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        for c in docker.list_containers(Some(opts)).await.unwrap_or_default() {
            let rm = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
            let _ = docker.remove_container(c.id.as_deref().unwrap_or_default(), Some(rm)).await;
        }
    }
    let _ = router.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome.unwrap();
}
