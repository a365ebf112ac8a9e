//! The example Pulse app (`examples/pulse-app/`, real pulse-framework) in its image, deployed by the
//! Docker orchestrator, driven the way a browser drives it: the page-tier stand-in prerenders with the
//! browser's cookies, the Socket.IO client connects with the render id in `auth.render_id`, attaches and
//! clicks the counter; every answer is checked. A connect without a render id is refused at CONNECT.
//! The app carries the drain plugin: its status call (with the orchestrator's secret, which reaches the
//! app through the mounted `PULSE_DRAIN_SECRET_FILE`) counts the open renders.
//!
//! A second test runs the drain-protocol checker in its Pulse mode (`pulse_server_drain::checker`, what
//! `cargo xtask check-app --mode pulse` runs) against a fresh container of the same image: every rule
//! must pass.
//!
//! Needs Docker (and, the first time the Python images are built, Debian's mirror and PyPI); with
//! `CI=true` an unreachable Docker fails, otherwise the tests skip and say why.

use std::time::{Duration, Instant};

use pulse_deploy_core::{AppName, InstanceState, Orchestrator, Release, Secret};
use pulse_deploy_local::docker::{remove_app_containers, DockerOrchestrator};
use pulse_deploy_local::preflight;
use pulse_deploy_tests::http::HttpClient;
use pulse_deploy_tests::pulse_tab::{self, Cookies};
use pulse_deploy_tests::session::Fate;
use pulse_deploy_tests::socketio::{ConnectFailure, SocketIo};
use pulse_server_drain::checker::{self, CheckOptions, CheckStatus};

/// Docker, or `None` (the test skips) when it is unreachable outside CI; under `CI=true` the test fails.
async fn docker_or_skip() -> Option<bollard::Docker> {
    preflight::or_skip("Docker", preflight::docker().await)
}

/// One instance of the example app's image, deployed by the Docker orchestrator with a fresh drain secret.
struct Deployed {
    docker: bollard::Docker,
    o: DockerOrchestrator,
    release: Release,
    state_dir: std::path::PathBuf,
    /// The drain secret the orchestrator mounted into the container.
    token: String,
}

impl Deployed {
    /// Builds (or finds) the image and deploys one instance of it as app `{prefix}-<random>`.
    async fn start(docker: bollard::Docker, prefix: &str) -> Deployed {
        let workspace = pulse_deploy_tests::workspace_root();
        let started = Instant::now();
        let image =
            pulse_deploy_tests::python_image::ensure_app_image(&docker, &workspace).await.expect("images");
        eprintln!("example app image {image} ready in {:?}", started.elapsed());
        let suffix: String = (0..5).map(|_| (b'a' + rand::random::<u8>() % 26) as char).collect();
        let app = AppName::new(format!("{prefix}-{suffix}")).unwrap();
        let state_dir = std::env::temp_dir().join(format!("pulse-deploy-test-{app}"));
        let token = format!("test-secret-{:016x}", rand::random::<u64>());
        let secret = Secret::new("test", token.clone()).unwrap();
        let o = DockerOrchestrator::builder()
            .drain_secret(secret)
            .state_dir(&state_dir)
            .docker(docker.clone())
            .retire_wait(Duration::from_secs(2))
            .build()
            .await
            .unwrap();
        let release = Release::builder(app.as_str(), "v1", image.as_str())
            .replicas(1)
            .port(8000)
            .health_path("/_pulse/health")
            .stop_grace(Duration::from_secs(10))
            .env("PULSE_SECRET", format!("session-secret-{:016x}", rand::random::<u64>()))
            .env("PULSE_SESSION_GRACE_SECS", "5")
            .build()
            .unwrap();
        Deployed { docker, o, release, state_dir, token }
    }

    /// Deploys the release and waits until its instance answers health; returns its base URL and id.
    async fn serving(&self, http: &HttpClient) -> Result<(String, String), String> {
        self.o.deploy(&self.release).await.map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found =
                self.o.versions(&self.release.app).await.ok().and_then(|mut v| v.pop()).and_then(|v| {
                    v.instances
                        .into_iter()
                        .find(|i| i.state == InstanceState::Running && i.endpoint.is_some())
                });
            if let Some(i) = found {
                let ep = i.endpoint.clone().unwrap();
                let base = format!("http://{}:{}", ep.host, ep.port);
                let healthy =
                    http.get(&format!("{base}/_pulse/health"), &[]).await.is_ok_and(|a| a.status == 200);
                if healthy {
                    return Ok((base, i.id.to_string()));
                }
            }
            if Instant::now() > deadline {
                return Err("the example app did not answer /_pulse/health within 60 s".to_string());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Removes every container of the app and the state dir, whatever happened.
    async fn cleanup(self) {
        let left = remove_app_containers(&self.docker, &self.release.app).await;
        let _ = std::fs::remove_dir_all(&self.state_dir);
        assert!(left.is_empty(), "cleanup left containers behind: {left:?}");
    }
}

#[tokio::test]
async fn example_pulse_app_serves_tabs_through_prerender_and_socketio() {
    let Some(docker) = docker_or_skip().await else { return };
    let d = Deployed::start(docker, "pytab").await;
    let (o, release, token) = (&d.o, &d.release, &d.token);
    let app = &release.app;
    let started = Instant::now();
    let outcome = async {
        let http = HttpClient::new();
        let (base, instance) = d.serving(&http).await?;
        eprintln!("example app serving at {base} ({:?} after deploy)", started.elapsed());

        let tabs =
            futures::future::join_all((0..3).map(|_| pulse_tab::open(&http, &base, Cookies::new()))).await;
        let mut tabs: Vec<_> = tabs.into_iter().collect::<Result<_, _>>()?;
        for tab in &mut tabs {
            if tab.page.version != "v1" || tab.page.instance != instance || tab.page.count != 0 {
                return Err(format!("unexpected page: {:?} (instance {instance})", tab.page));
            }
            for _ in 0..5 {
                tab.increment().await?;
            }
        }
        let ids: std::collections::BTreeSet<_> = tabs.iter().map(|t| t.page.render_id.clone()).collect();
        if ids.len() != 3 || tabs.iter().any(|t| t.count != 5) {
            return Err(format!("each tab must have its own render and count 5: {tabs:?}"));
        }
        // The drain plugin answers its status call with the secret the orchestrator mounted, and counts
        // the renders; without the secret it refuses.
        let status_url = format!("{base}/_pulse/admin/status");
        let status = http.get(&status_url, &[("authorization", format!("Bearer {token}"))]).await?;
        let body: serde_json::Value = serde_json::from_slice(&status.body).map_err(|e| e.to_string())?;
        if status.status != 200
            || body["state"] != "serving"
            || body["version"] != "v1"
            || body["instance_id"] != instance.as_str()
            || body["active_sessions"].as_u64() != Some(3)
        {
            return Err(format!("status with the secret: {} {body}", status.status));
        }
        let refused =
            http.get(&status_url, &[("authorization", "Bearer wrong-secret-0000000000".into())]).await?;
        if refused.status != 401 {
            return Err(format!("status with a wrong token: expected 401, got {}", refused.status));
        }
        // A second tab of the same browser (same cookies) gets its own render.
        let jar = tabs[0].jar.clone();
        let mut second = pulse_tab::open(&http, &base, jar.clone()).await?;
        second.increment().await?;
        if second.page.render_id == tabs[0].page.render_id || second.count != 1 {
            return Err(format!("a second tab shared the first tab's render: {:?}", second.page));
        }
        second.close().await;
        // A connect without a render id is refused at CONNECT (not at the upgrade).
        match SocketIo::connect(&base, &pulse_tab::cookie_header(&jar), &serde_json::json!({})).await {
            Err(ConnectFailure::Refused(data)) => eprintln!("connect without render id refused: {data}"),
            other => return Err(format!("connect without render id: expected CONNECT_ERROR, got {other:?}")),
        }
        // A tab whose socket drops reconnects with its render id, as Pulse's client does: the server
        // still has the render (within its grace), so the page goes on where it was, without a reload.
        let tab = tabs.pop().unwrap();
        let (mut tab, reloaded) = tab.reconnect(&http, &base).await?;
        if reloaded || tab.count != 6 {
            return Err(format!("reconnect within the grace: reloaded {reloaded}, count {}", tab.count));
        }
        tab.increment().await?;
        // A tab whose render the server no longer has (another instance, or past the grace): the server
        // answers the re-attach with `reload`, and the page reloads onto a fresh render.
        let mut gone = tab.page.clone();
        gone.render_id = format!("{:032x}", rand::random::<u128>());
        let (mut reloaded_tab, reloaded) =
            pulse_tab::reconnect(&http, &base, tab.jar.clone(), gone.clone(), 0).await?;
        if !reloaded || reloaded_tab.page.render_id == gone.render_id || reloaded_tab.count != 0 {
            return Err(format!(
                "reconnect to a render the server lacks: reloaded {reloaded}, {:?}",
                reloaded_tab.page
            ));
        }
        reloaded_tab.increment().await?;
        reloaded_tab.close().await;
        tab.close().await;
        for t in tabs {
            t.close().await;
        }
        // Live sessions (as the e2e runs them): every answer checked on a steady tick.
        let sessions = futures::future::join_all((0..2).map(|n| {
            pulse_deploy_tests::pulse_session::open(n, &http, &base, None, Duration::from_millis(50))
        }))
        .await;
        let sessions: Vec<_> = sessions.into_iter().collect::<Result<_, _>>()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while sessions.iter().any(|s| s.record().answers < 10 && s.record().fate == Fate::Open) {
            if Instant::now() > deadline {
                return Err("live sessions did not answer 10 times within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for s in sessions {
            let r = s.close().await;
            if r.fate != Fate::Closed || r.answers < 10 || r.version != "v1" || !r.moves.is_empty() {
                return Err(format!("live session: {r:?}"));
            }
        }
        o.retire(app, &release.version).await.map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    }
    .await;

    d.cleanup().await;
    outcome.unwrap();
}

#[tokio::test]
async fn check_app_in_pulse_mode_passes_against_the_example_image() {
    let Some(docker) = docker_or_skip().await else { return };
    let d = Deployed::start(docker, "pychk").await;
    let outcome = async {
        let (base, instance) = d.serving(&HttpClient::new()).await?;
        let options = CheckOptions {
            expect_version: Some("v1".into()),
            expect_instance_id: Some(instance),
            ..CheckOptions::pulse()
        };
        let secret = Secret::new("drain secret", d.token.clone()).map_err(|e| e.to_string())?;
        let report = checker::check(&base, &secret, &options).await.map_err(|e| e.to_string())?;
        eprintln!("{report}");
        if !report.passed() || report.checks.iter().any(|c| matches!(c.status, CheckStatus::Skipped(_))) {
            return Err(format!("check-app --mode pulse against the example image: {report}"));
        }
        if report.to_string().contains(&d.token) {
            return Err("the checker's report contains the drain secret".into());
        }
        Ok::<(), String>(())
    }
    .await;
    d.cleanup().await;
    outcome.unwrap();
}
