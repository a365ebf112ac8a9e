//! EnvoyRouter against a real Envoy and real HTTP/WebSocket upstreams on loopback.
//!
//! Needs Envoy (`cargo xtask install-tools`); with `CI=true` a missing Envoy fails, otherwise tests skip.

mod envoy_common;

use std::collections::BTreeSet;
use std::time::Duration;

use envoy_common::*;
use pulse_deploy_core::{Error, Health, TrafficRouter, Weights};
use pulse_deploy_local::envoy::instance_cookie_value;
use pulse_deploy_local::envoy::EnvoyRouter;

const T: Duration = Duration::from_secs(15);

/// Waits until every target of `version` reports `want` health.
async fn wait_health(r: &EnvoyRouter, version: &str, want: Health) {
    eventually(&format!("{version} to be {want:?}"), T, || async {
        let routing = r.routing(&app()).await.ok()?;
        let rv = routing.versions.get(&v(version))?;
        rv.targets.iter().all(|t| t.health == want).then_some(())
    })
    .await
}

#[tokio::test]
async fn weight_flip_and_affinity_by_cookie_header_and_query() {
    require_envoy!();
    let r = TestRouter::start().await;
    let (a1, a2, b1) = (
        Upstream::start("v1", "a1").await,
        Upstream::start("v1", "a2").await,
        Upstream::start("v2", "b1").await,
    );
    r.attach(&route("v1", &[&a1, &a2])).await.unwrap();
    r.set_weights(&app(), &Weights::all_to(v("v1"))).await.unwrap();
    let http = Http::new();
    let first = http.get(&r.url("/page"), &[]).await;
    assert_eq!((first.status, first.version()), (200, Some("v1")), "{first:?}");
    assert_eq!(first.set_cookies().get("pulse-version").map(String::as_str), Some("v1"));

    r.attach(&route("v2", &[&b1])).await.unwrap();
    wait_health(&r, "v2", Health::Healthy).await;
    // Attached at weight 0: new sessions still go to v1.
    assert_eq!(http.get(&r.url("/page"), &[]).await.version(), Some("v1"));

    r.set_weights(&app(), &Weights::all_to(v("v2"))).await.unwrap();
    // set_weights returns once Envoy applied it: the very next new session goes to v2.
    for _ in 0..5 {
        let resp = http.get(&r.url("/page"), &[]).await;
        assert_eq!(resp.version(), Some("v2"));
        assert_eq!(resp.set_cookies().get("pulse-version").map(String::as_str), Some("v2"));
    }
    // Affinity to v1 (weight 0) by cookie, header and query parameter.
    let by_cookie = http.get(&r.url("/page"), &[("cookie", "theme=dark; pulse-version=v1; x=y")]).await;
    assert_eq!(by_cookie.version(), Some("v1"));
    assert!(
        !by_cookie.set_cookies().contains_key("pulse-version"),
        "affinity routes do not reset the cookie"
    );
    assert_eq!(http.get(&r.url("/page"), &[("x-pulse-version", "v1")]).await.version(), Some("v1"));
    assert_eq!(http.get(&r.url("/page?a=b&pulse_version=v1"), &[]).await.version(), Some("v1"));
    // The per-tab key wins over the cookie.
    let both = http.get(&r.url("/page"), &[("x-pulse-version", "v2"), ("cookie", "pulse-version=v1")]).await;
    assert_eq!(both.version(), Some("v2"));
    // Anchored: `v10` is not `v1`, and an unknown version falls through to the split with a fresh cookie.
    for stale in [
        vec![("cookie", "pulse-version=v10")],
        vec![("cookie", "xpulse-version=v1")],
        vec![("x-pulse-version", "v9")],
    ] {
        let resp = http.get(&r.url("/page"), &stale).await;
        assert_eq!(resp.version(), Some("v2"), "{stale:?}");
        assert_eq!(resp.set_cookies().get("pulse-version").map(String::as_str), Some("v2"), "{stale:?}");
    }
    let resp = http.get(&r.url("/page?pulse_version=v9"), &[]).await;
    assert_eq!(resp.version(), Some("v2"));

    // Detached: v1's affinity falls through too.
    r.detach(&app(), &v("v1")).await.unwrap();
    let resp = http.get(&r.url("/page"), &[("cookie", "pulse-version=v1")]).await;
    assert_eq!(resp.version(), Some("v2"));
    assert_eq!(resp.set_cookies().get("pulse-version").map(String::as_str), Some("v2"));
    // Detaching again succeeds.
    r.detach(&app(), &v("v1")).await.unwrap();
}

#[tokio::test]
async fn split_and_no_weight_states() {
    require_envoy!();
    let r = TestRouter::start().await;
    let http = Http::new();
    // Nothing attached: a clear 503, admin still blocked.
    assert_eq!(http.get(&r.url("/"), &[]).await.status, 503);
    let (a, b) = (Upstream::start("v1", "a").await, Upstream::start("v2", "b").await);
    r.attach(&route("v1", &[&a])).await.unwrap();
    r.attach(&route("v2", &[&b])).await.unwrap();
    // Attached, all weights 0: new sessions get 503, affinity still works.
    let resp = http.get(&r.url("/"), &[]).await;
    assert_eq!(resp.status, 503);
    assert!(resp.body.contains("no version of shop"), "{}", resp.body);
    assert_eq!(http.get(&r.url("/"), &[("cookie", "pulse-version=v2")]).await.version(), Some("v2"));
    // A 50/50 split reaches both versions.
    r.set_weights(&app(), &Weights::split(v("v2"), 50, v("v1")).unwrap()).await.unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..60 {
        seen.insert(http.get(&r.url("/"), &[]).await.version().unwrap().to_owned());
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "both versions get new sessions: {seen:?}");
    // Back to all weights 0.
    r.set_weights(&app(), &Weights::default()).await.unwrap();
    assert_eq!(http.get(&r.url("/"), &[]).await.status, 503);
}

#[tokio::test]
async fn instance_pinning_inside_a_version() {
    require_envoy!();
    let r = TestRouter::start().await;
    let ups = [
        Upstream::start("v1", "i1").await,
        Upstream::start("v1", "i2").await,
        Upstream::start("v1", "i3").await,
    ];
    r.attach(&route("v1", &[&ups[0], &ups[1], &ups[2]])).await.unwrap();
    r.set_weights(&app(), &Weights::all_to(v("v1"))).await.unwrap();
    wait_health(&r, "v1", Health::Healthy).await;
    let http = Http::new();
    let mut first_instances = BTreeSet::new();
    for _ in 0..6 {
        let first = http.get(&r.url("/"), &[]).await;
        let cookies = first.set_cookies();
        let instance = first.instance().unwrap().to_owned();
        let up = ups.iter().find(|u| u.instance == instance).unwrap();
        assert_eq!(cookies["pulse-instance"], instance_cookie_value(up.addr), "documented cookie format");
        first_instances.insert(instance.clone());
        let jar = format!(
            "pulse-version={}; pulse-instance={}",
            cookies["pulse-version"],
            cookies.get("pulse-instance").expect("an instance cookie is set")
        );
        for _ in 0..5 {
            let again = http.get(&r.url("/"), &[("cookie", &jar)]).await;
            assert_eq!(again.instance(), Some(instance.as_str()), "a client stays on its instance");
        }
        // The WebSocket with the same cookies lands on the same instance.
        let ws_url = format!("ws://{}/ws", r.listener_addr());
        let mut ws = ws_connect(&ws_url, &[("cookie", &jar)]).await;
        assert_eq!(ws_echo(&mut ws, "hi").await, format!("v1/{instance}:hi"));
    }
    assert!(first_instances.len() >= 2, "new clients are spread over instances: {first_instances:?}");
}

#[tokio::test]
async fn admin_paths_are_never_routed() {
    require_envoy!();
    let r = TestRouter::start().await;
    let a = Upstream::start("v1", "a").await;
    r.attach(&route("v1", &[&a])).await.unwrap();
    r.set_weights(&app(), &Weights::all_to(v("v1"))).await.unwrap();
    let http = Http::new();
    for path in [
        "/_pulse/admin/drain",
        "/_pulse/admin/status",
        "/_pulse/admin",
        "/_PULSE/Admin/drain",
        "/_pulse//admin/drain",
        "/x/../_pulse/admin/drain",
        "/_pulse/./admin/drain",
        "/_pulse%2Fadmin/drain",
        "/_pulse/%61dmin/drain",
    ] {
        for method in ["GET", "POST"] {
            for headers in [vec![], vec![("x-pulse-version", "v1")], vec![("cookie", "pulse-version=v1")]] {
                let resp = http.request(method, &r.url(path), &headers).await;
                assert_eq!(resp.status, 404, "{method} {path} {headers:?}");
            }
        }
    }
    assert_eq!(
        a.admin_hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no admin request reached the instance"
    );
    // Ordinary paths still work.
    assert_eq!(http.get(&r.url("/_pulse/prerender"), &[]).await.status, 200);
}

#[tokio::test]
async fn open_websocket_survives_weight_changes_and_detach() {
    require_envoy!();
    let r = TestRouter::start().await;
    let (a, b) = (Upstream::start("v1", "a").await, Upstream::start("v2", "b").await);
    r.attach(&route("v1", &[&a])).await.unwrap();
    r.set_weights(&app(), &Weights::all_to(v("v1"))).await.unwrap();
    let ws_url = format!("ws://{}/ws", r.listener_addr());
    let mut ws = ws_connect(&ws_url, &[]).await;
    assert_eq!(ws_echo(&mut ws, "1").await, "v1/a:1");
    let mut ws_key = ws_connect(&format!("{ws_url}?pulse_version=v1"), &[]).await;
    assert_eq!(ws_echo(&mut ws_key, "k").await, "v1/a:k");

    r.attach(&route("v2", &[&b])).await.unwrap();
    assert_eq!(ws_echo(&mut ws, "2").await, "v1/a:2");
    r.set_weights(&app(), &Weights::split(v("v2"), 50, v("v1")).unwrap()).await.unwrap();
    assert_eq!(ws_echo(&mut ws, "3").await, "v1/a:3");
    r.set_weights(&app(), &Weights::all_to(v("v2"))).await.unwrap();
    assert_eq!(ws_echo(&mut ws, "4").await, "v1/a:4");
    // A new WebSocket without affinity goes to v2, one with v1's key to v1.
    let mut fresh = ws_connect(&ws_url, &[]).await;
    assert_eq!(ws_echo(&mut fresh, "n").await, "v2/b:n");
    let mut keyed = ws_connect(&format!("{ws_url}?pulse_version=v1"), &[]).await;
    assert_eq!(ws_echo(&mut keyed, "k2").await, "v1/a:k2");
    // Even detaching v1 (routes, then its cluster) leaves open sessions working.
    r.detach(&app(), &v("v1")).await.unwrap();
    assert_eq!(ws_echo(&mut ws, "5").await, "v1/a:5");
    assert_eq!(ws_echo(&mut ws_key, "6").await, "v1/a:6");
    assert_eq!(ws_echo(&mut keyed, "7").await, "v1/a:7");
}

#[tokio::test]
async fn health_is_checked_at_weight_zero_and_unhealthy_versions_stay_reachable() {
    require_envoy!();
    let r = TestRouter::start().await;
    let (a, b1, b2) = (
        Upstream::start("v1", "a").await,
        Upstream::start("v2", "b1").await,
        Upstream::start("v2", "b2").await,
    );
    r.attach(&route("v1", &[&a])).await.unwrap();
    r.set_weights(&app(), &Weights::all_to(v("v1"))).await.unwrap();
    r.attach(&route("v2", &[&b1, &b2])).await.unwrap();
    wait_health(&r, "v2", Health::Healthy).await;
    let routing = r.routing(&app()).await.unwrap();
    assert_eq!(routing.weights.get(&v("v2")), 0);
    assert_eq!(routing.versions[&v("v2")].healthy_targets(), 2);

    // v2 (at weight 0) starts failing health on one host: reported, and the other host serves.
    b1.set_healthy(false);
    eventually("b1 unhealthy", T, || async {
        let routing = r.routing(&app()).await.ok()?;
        let t = &routing.versions[&v("v2")].targets;
        (t.iter().find(|t| t.target.instance.0 == "b1")?.health == Health::Unhealthy).then_some(())
    })
    .await;
    let http = Http::new();
    for _ in 0..5 {
        assert_eq!(http.get(&r.url("/"), &[("x-pulse-version", "v2")]).await.instance(), Some("b2"));
    }
    // Every host of v2 fails health (a drained version): clients carrying its affinity still reach it
    // (panic mode), rather than getting 503 "no healthy upstream".
    b2.set_healthy(false);
    wait_health(&r, "v2", Health::Unhealthy).await;
    for _ in 0..5 {
        let resp = http.get(&r.url("/"), &[("cookie", "pulse-version=v2")]).await;
        assert_eq!((resp.status, resp.version()), (200, Some("v2")), "{resp:?}");
    }
    b1.set_healthy(true);
    b2.set_healthy(true);
    wait_health(&r, "v2", Health::Healthy).await;
}

#[tokio::test]
async fn envoy_killed_mid_rollout_comes_back_with_the_same_routing() {
    require_envoy!();
    let r = TestRouter::start().await;
    let (a, b) = (Upstream::start("v1", "a").await, Upstream::start("v2", "b").await);
    r.attach(&route("v1", &[&a])).await.unwrap();
    r.attach(&route("v2", &[&b])).await.unwrap();
    r.set_weights(&app(), &Weights::split(v("v2"), 100, v("v1")).unwrap()).await.unwrap();
    let before = r.routing(&app()).await.unwrap();
    let pid = r.envoy_pid().expect("Envoy runs");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    eventually("Envoy gone", T, || async { r.envoy_pid().is_none().then_some(()) }).await;

    r.ensure_running().await.unwrap();
    let new_pid = r.envoy_pid().expect("Envoy runs again");
    assert_ne!(new_pid, pid);
    let after = r.routing(&app()).await.unwrap();
    assert_eq!(after.weights, before.weights);
    assert_eq!(after.versions.keys().collect::<Vec<_>>(), before.versions.keys().collect::<Vec<_>>());
    let http = Http::new();
    assert_eq!(http.get(&r.url("/"), &[("cookie", "pulse-version=v1")]).await.version(), Some("v1"));
    assert_eq!(http.get(&r.url("/"), &[]).await.version(), Some("v2"));

    // Killed again: the next router call restarts it by itself.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(new_pid as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    eventually("Envoy gone", T, || async { r.envoy_pid().is_none().then_some(()) }).await;
    let routing = r.routing(&app()).await.unwrap();
    assert_eq!(routing.weights, before.weights);
    assert_eq!(http.get(&r.url("/"), &[("x-pulse-version", "v1")]).await.version(), Some("v1"));
}

#[tokio::test]
async fn a_second_router_adopts_the_running_envoy() {
    require_envoy!();
    let (builder, dir) = TestRouter::builder();
    let first = builder.clone().build().await.unwrap();
    let guard = TestRouter { router: None, dir: dir.clone() };
    let (a, b) = (Upstream::start("v1", "a").await, Upstream::start("v2", "b").await);
    first.attach(&route("v1", &[&a])).await.unwrap();
    first.attach(&route("v2", &[&b])).await.unwrap();
    first.set_weights(&app(), &Weights::all_to(v("v1"))).await.unwrap();
    let pid = first.envoy_pid().unwrap();
    let url = first.public_url();
    drop(first); // the deployer goes away; Envoy keeps serving
    let http = Http::new();
    assert_eq!(http.get(&format!("{url}/"), &[]).await.version(), Some("v1"));

    let second = EnvoyRouter::builder(&dir).build().await.unwrap();
    assert_eq!(second.envoy_pid(), Some(pid), "adopted, not restarted");
    assert_eq!(second.public_url(), url);
    let routing = second.routing(&app()).await.unwrap();
    assert_eq!(routing.weights, Weights::all_to(v("v1")));
    assert_eq!(routing.versions.len(), 2);
    assert_eq!(routing.versions[&v("v1")].route, route("v1", &[&a]));
    second.set_weights(&app(), &Weights::all_to(v("v2"))).await.unwrap();
    assert_eq!(http.get(&format!("{url}/"), &[]).await.version(), Some("v2"));

    // A router asking for another listener on the same directory is refused.
    let err = EnvoyRouter::builder(&dir).listen("127.0.0.1:1".parse().unwrap()).build().await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    second.shutdown().await.unwrap();
    assert!(!dir.exists());
    second.shutdown().await.unwrap(); // idempotent
    assert!(matches!(second.routing(&app()).await.unwrap_err(), Error::NotFound { .. }));
    assert!(!second.envoy_processes().contains(&pid), "Envoy {pid} still runs after shutdown");
    drop(guard);
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_changes() {
    require_envoy!();
    let r = TestRouter::start().await;
    let a = Upstream::start("v1", "a").await;
    r.attach(&route("v1", &[&a])).await.unwrap();
    let mut bad = route("v2", &[&a]);
    bad.targets[0].endpoint.host = "db.internal".into();
    assert!(matches!(r.attach(&bad).await.unwrap_err(), Error::InvalidInput { field: "route.targets", .. }));
    let e = r.set_weights(&app(), &Weights::all_to(v("v7"))).await.unwrap_err();
    assert!(e.to_string().contains("v7") && matches!(e, Error::InvalidInput { .. }), "{e}");
    r.set_weights(&app(), &Weights::all_to(v("v1"))).await.unwrap();
    let e = r.detach(&app(), &v("v1")).await.unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e}");
    let routing = r.routing(&app()).await.unwrap();
    assert_eq!(routing.versions.len(), 1);
    assert_eq!(routing.weights, Weights::all_to(v("v1")));
    // An app never attached has nothing routed.
    let other_routing = r.routing(&pulse_deploy_core::AppName::new("other").unwrap()).await.unwrap();
    assert!(other_routing.versions.is_empty() && other_routing.weights.is_empty());
    // Builder validation happens before any resource exists.
    let dir = std::env::temp_dir().join(format!("pulse-envoy-never-{}", rand::random::<u64>()));
    let e = EnvoyRouter::builder(&dir).health_check_interval(Duration::ZERO).build().await.unwrap_err();
    assert!(matches!(e, Error::InvalidInput { field: "health_check_interval", .. }), "{e}");
    let e = EnvoyRouter::builder(&dir).envoy_binary("/nonexistent/envoy").build().await.unwrap_err();
    assert!(e.to_string().contains("cargo xtask install-tools"), "{e}");
    assert!(!dir.exists());
}

#[tokio::test]
async fn generated_configuration_passes_envoy_validate() {
    require_envoy!();
    let r = TestRouter::start().await;
    r.validate_config().await.unwrap();
    let (a, b) = (Upstream::start("v1", "a").await, Upstream::start("v2", "b").await);
    r.attach(&route("v1", &[&a])).await.unwrap();
    r.validate_config().await.unwrap();
    let mut key_only = route("v2", &[&b]);
    key_only.affinity = pulse_deploy_core::AffinityMode::Key;
    r.attach(&key_only).await.unwrap();
    r.set_weights(&app(), &Weights::split(v("v2"), 30, v("v1")).unwrap()).await.unwrap();
    r.validate_config().await.unwrap();
}

#[tokio::test]
async fn several_apps_are_chosen_by_host() {
    require_envoy!();
    let r = TestRouter::start().await;
    let blog = pulse_deploy_core::AppName::new("blog").unwrap();
    let (s1, b1) = (Upstream::start("v1", "shop-1").await, Upstream::start("v1", "blog-1").await);
    r.attach(&route("v1", &[&s1])).await.unwrap();
    r.set_weights(&app(), &Weights::all_to(v("v1"))).await.unwrap();
    let http = Http::new();
    // The first app attached is the default for any Host.
    assert_eq!(http.get(&r.url("/"), &[]).await.instance(), Some("shop-1"));
    assert_eq!(r.default_app().unwrap(), Some(app()));

    let mut blog_route = route("v1", &[&b1]);
    blog_route.app = blog.clone();
    r.attach(&blog_route).await.unwrap();
    r.set_weights(&blog, &Weights::all_to(v("v1"))).await.unwrap();
    assert_eq!(r.apps().unwrap(), vec![blog.clone(), app()]);
    for host in ["blog", "blog.localhost", "blog.localhost:8080"] {
        assert_eq!(http.get(&r.url("/"), &[("host", host)]).await.instance(), Some("blog-1"), "{host}");
    }
    assert_eq!(http.get(&r.url("/"), &[("host", "shop.localhost")]).await.instance(), Some("shop-1"));
    // The first app stays the default when a second one is attached.
    assert_eq!(http.get(&r.url("/"), &[]).await.instance(), Some("shop-1"));
    assert_eq!(r.default_app().unwrap(), Some(app()));
    // Apps are isolated: weights and detach in one do not touch the other.
    r.set_weights(&blog, &Weights::default()).await.unwrap();
    r.detach(&blog, &v("v1")).await.unwrap();
    assert_eq!(r.routing(&app()).await.unwrap().weights, Weights::all_to(v("v1")));
    assert!(r.routing(&blog).await.unwrap().versions.is_empty());
    assert_eq!(http.get(&r.url("/"), &[]).await.instance(), Some("shop-1"));
    // A default app given to the builder replaces the implicit one and is kept.
    let r2 = EnvoyRouter::builder(r.state_dir()).default_app("blog").build().await.unwrap();
    assert_eq!(r2.default_app().unwrap(), Some(blog.clone()));
    let resp = http.get(&r.url("/"), &[]).await;
    assert_eq!(resp.status, 503, "blog has nothing attached: {resp:?}");
    let e = EnvoyRouter::builder(r.state_dir()).default_app("shop").build().await.unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e}");
}

/// The deployer half of `envoy_survives_the_deployer_being_killed`, run as a child process by it. Run
/// directly (without the variables the parent sets), it has nothing to do and returns at once.
#[tokio::test]
async fn deployer_child_process() {
    let (Ok(dir), Ok(port)) =
        (std::env::var("PULSE_ENVOY_CHILD_DIR"), std::env::var("PULSE_ENVOY_CHILD_UPSTREAM"))
    else {
        return;
    };
    let r = EnvoyRouter::builder(&dir).concurrency(1).build().await.unwrap();
    let mut rt = route("v1", &[]);
    rt.targets = vec![pulse_deploy_core::Target {
        instance: "a".into(),
        endpoint: pulse_deploy_core::Endpoint::new("127.0.0.1", port.parse().unwrap()),
    }];
    r.attach(&rt).await.unwrap();
    r.set_weights(&app(), &Weights::all_to(v("v1"))).await.unwrap();
    println!("READY {} {}", r.public_url(), r.envoy_pid().unwrap());
    // Wait to be killed by the parent test.
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn envoy_survives_the_deployer_being_killed() {
    require_envoy!();
    use tokio::io::AsyncBufReadExt;
    let (_, dir) = TestRouter::builder();
    let _guard = TestRouter { router: None, dir: dir.clone() };
    let up = Upstream::start("v1", "a").await;
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["deployer_child_process", "--exact", "--nocapture"])
        .env("PULSE_ENVOY_CHILD_DIR", &dir)
        .env("PULSE_ENVOY_CHILD_UPSTREAM", up.addr.port().to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(T * 2, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("READY ") {
                return rest.to_owned();
            }
        }
        panic!("the deployer child exited before it was ready");
    })
    .await
    .expect("the deployer child did not get ready in time");
    let (url, pid) = ready.split_once(' ').unwrap();
    let pid: u32 = pid.parse().unwrap();
    child.start_kill().unwrap(); // SIGKILL, mid-life
    child.wait().await.unwrap();

    // Envoy keeps serving with the routing the dead deployer configured.
    let http = Http::new();
    assert_eq!(http.get(&format!("{url}/"), &[]).await.version(), Some("v1"));
    // The next deployer adopts it.
    let r = EnvoyRouter::builder(&dir).build().await.unwrap();
    assert_eq!(r.envoy_pid(), Some(pid));
    assert_eq!(r.routing(&app()).await.unwrap().weights, Weights::all_to(v("v1")));
    r.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_busy_listener_port_is_reported_with_envoys_words() {
    require_envoy!();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (builder, dir) = TestRouter::builder();
    let _guard = TestRouter { router: None, dir };
    let e = builder.listen(busy.local_addr().unwrap()).build().await.unwrap_err();
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(msg.contains("exited while starting") && msg.contains("in use"), "{msg}");
    assert!(e.is_retryable(), "a busy port may be freed: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_while_versions_come_and_go() {
    require_envoy!();
    let r = TestRouter::start().await;
    let ups: Vec<Upstream> = futures::future::join_all((1..=4).map(|i| {
        let version = format!("v{i}");
        async move { Upstream::start(&version, &format!("{version}-a")).await }
    }))
    .await;
    r.attach(&route("v1", &[&ups[0]])).await.unwrap();
    r.set_weights(&app(), &Weights::all_to(v("v1"))).await.unwrap();
    // Clients without affinity, and clients pinned to v1 by cookie and by key, request all the time.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url = r.url("/page");
    let load = |headers: Vec<(&'static str, &'static str)>| {
        let (stop, url, http) = (stop.clone(), url.clone(), Http::new());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut count = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && count < 20_000 {
                let resp = http.get(&url, &headers).await;
                count += 1;
                if resp.status != 200 {
                    failures.push(format!("{} {}", resp.status, resp.body.trim()));
                }
                if headers.iter().any(|(_, v)| v.ends_with("v1")) && resp.version() != Some("v1") {
                    failures.push(format!("v1 client landed on {:?}", resp.version()));
                }
            }
            (count, failures)
        })
    };
    let loads = vec![
        load(vec![]),
        load(vec![("cookie", "pulse-version=v1")]),
        load(vec![("x-pulse-version", "v1")]),
        // Affinity to versions being attached and detached: never a 503 from a missing cluster.
        load(vec![("cookie", "pulse-version=v2")]),
        load(vec![("x-pulse-version", "v3")]),
    ];
    // Roll v2, v3, v4 in, each taking all new sessions; detach the intermediate ones (v1 stays attached).
    for i in 2..=4 {
        let version = format!("v{i}");
        r.attach(&route(&version, &[&ups[i - 1]])).await.unwrap();
        r.set_weights(&app(), &Weights::split(v(&version), 50, v(&format!("v{}", i - 1))).unwrap())
            .await
            .unwrap();
        r.set_weights(&app(), &Weights::all_to(v(&version))).await.unwrap();
        if i > 2 {
            r.detach(&app(), &v(&format!("v{}", i - 1))).await.unwrap();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for l in loads {
        let (count, failures) = l.await.unwrap();
        assert!(count > 0);
        assert!(
            failures.is_empty(),
            "{} of {count} requests failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
    }
}
