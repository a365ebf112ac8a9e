//! How a container records what it belongs to: label keys, the stored [`Release`], instance names and the
//! retiring mark carried by the container's name.
//!
//! Everything the orchestrator knows about a container is read back from here, so a deployer restarted
//! from scratch sees the same state. This module does no I/O; it only encodes and decodes.
//!
//! Labels are fixed at creation. The one mutable, durable, atomic field Docker offers on a container is
//! its *name*, so the retiring mark lives there, in two steps ([`RetireMark`]): `retire` renames
//! `pulse-shop-v1-k3x9q2` to `pulse-shop-v1-k3x9q2.retiring-<ms>` (retiring; SIGTERM maybe not sent yet),
//! sends SIGTERM, then renames it to `pulse-shop-v1-k3x9q2.sigterm-<ms>` (SIGTERM sent at that Unix time in
//! milliseconds: the grace period counts from there). The instance id itself never changes: it is kept in
//! [`INSTANCE`] and in the instance's `PULSE_INSTANCE_ID`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pulse_deploy_core::{AppName, Error, InstanceId, Release, Result, VersionId};
use rand::Rng;

/// Present (value `true`) on every container pulse-deploy created. Containers without it are never
/// listed, stopped or removed.
pub const MANAGED: &str = "dev.pulse-deploy.managed";
/// The app name.
pub const APP: &str = "dev.pulse-deploy.app";
/// The version id.
pub const VERSION: &str = "dev.pulse-deploy.version";
/// The instance id (the container's original name, also its `PULSE_INSTANCE_ID`).
pub const INSTANCE: &str = "dev.pulse-deploy.instance";
/// The whole [`Release`] as JSON, so `versions()` recovers it after a restart.
pub const RELEASE: &str = "dev.pulse-deploy.release";
/// When the version was first created, in Unix milliseconds. Replacement instances copy it, so the
/// version's creation time survives the replacement of every one of its containers.
pub const CREATED_AT: &str = "dev.pulse-deploy.created-at";

/// The separator of the first step of the retiring mark (retiring, SIGTERM maybe not sent).
const MARKED: &str = ".retiring-";
/// The separator of the second step of the retiring mark (SIGTERM sent).
const SIGNALLED: &str = ".sigterm-";

/// The retiring mark a container's name carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetireMark {
    /// Marked retiring at this time; SIGTERM may or may not have been sent (the deployer may have died
    /// between the two calls).
    Marked(SystemTime),
    /// SIGTERM was sent at this time.
    Signalled(SystemTime),
}

/// Length of the random suffix of an instance id.
const SUFFIX_LEN: usize = 6;

/// A new instance id `pulse-<app>-<version>-<6 random a-z0-9>`: unique, valid as a container name and as
/// a DNS label.
pub fn new_instance_id(app: &AppName, version: &VersionId) -> InstanceId {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let suffix: String =
        (0..SUFFIX_LEN).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    InstanceId(format!("pulse-{app}-{version}-{suffix}"))
}

/// The labels of a new instance of `release`.
pub fn instance_labels(
    release: &Release,
    instance: &InstanceId,
    version_created_at: SystemTime,
) -> Result<HashMap<String, String>> {
    Ok(HashMap::from([
        (MANAGED.to_owned(), "true".to_owned()),
        (APP.to_owned(), release.app.to_string()),
        (VERSION.to_owned(), release.version.to_string()),
        (INSTANCE.to_owned(), instance.0.clone()),
        (RELEASE.to_owned(), encode_release(release)?),
        (CREATED_AT.to_owned(), unix_millis(version_created_at).to_string()),
    ]))
}

/// The release as stored in [`RELEASE`].
pub fn encode_release(release: &Release) -> Result<String> {
    serde_json::to_string(release).map_err(|e| {
        Error::provider_source("docker", "could not encode the release as a container label", false, e)
    })
}

/// Reads the release stored in a container's labels, re-validated.
pub fn decode_release(labels: &HashMap<String, String>, container: &str) -> Result<Release> {
    let raw = labels.get(RELEASE).ok_or_else(|| {
        Error::provider(
            "docker",
            format!("container {container} is managed by pulse-deploy but has no `{RELEASE}` label; remove it by hand (`docker rm -f {container}`)"),
            false,
        )
    })?;
    let release: Release = serde_json::from_str(raw).map_err(|e| {
        Error::provider_source(
            "docker",
            format!("container {container} carries a `{RELEASE}` label that is not a valid release; remove it by hand (`docker rm -f {container}`)"),
            false,
            e,
        )
    })?;
    release.validate()?;
    Ok(release)
}

/// True when `stored` (a release read back from labels) is the same release as `wanted`. Compared in
/// their stored form, so precision lost by the encoding (durations are stored in whole seconds) does not
/// count as a difference.
pub fn same_release(stored: &Release, wanted: &Release) -> bool {
    match (serde_json::to_value(stored), serde_json::to_value(wanted)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The version creation time stored in [`CREATED_AT`], if present and valid.
pub fn decode_created_at(labels: &HashMap<String, String>) -> Option<SystemTime> {
    let ms: u64 = labels.get(CREATED_AT)?.parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_millis(ms))
}

/// Milliseconds since the Unix epoch (0 for earlier times).
pub fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The container name of `instance` with `mark`.
pub fn marked_name(instance: &InstanceId, mark: RetireMark) -> String {
    match mark {
        RetireMark::Marked(at) => format!("{instance}{MARKED}{}", unix_millis(at)),
        RetireMark::Signalled(at) => format!("{instance}{SIGNALLED}{}", unix_millis(at)),
    }
}

/// The retiring mark a container name carries, if any. Accepts names as the Engine API lists them (with
/// a leading `/`).
pub fn retire_mark(container_name: &str) -> Option<RetireMark> {
    let name = container_name.trim_start_matches('/');
    let parse = |ms: &str| ms.parse().ok().map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
    if let Some((_, ms)) = name.rsplit_once(SIGNALLED) {
        return parse(ms).map(RetireMark::Signalled);
    }
    let (_, ms) = name.rsplit_once(MARKED)?;
    parse(ms).map(RetireMark::Marked)
}

/// Label filters (Engine API `filters` syntax) selecting the managed containers of `app`, and of one of
/// its versions when `version` is given.
pub fn filters(app: &AppName, version: Option<&VersionId>) -> HashMap<String, Vec<String>> {
    let mut labels = vec![format!("{MANAGED}=true"), format!("{APP}={app}")];
    if let Some(v) = version {
        labels.push(format!("{VERSION}={v}"));
    }
    HashMap::from([("label".to_owned(), labels)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Release {
        Release::builder("shop", "v1", "shop:v1").env("A", "b").build().unwrap()
    }

    #[test]
    fn instance_ids_are_unique_dns_labels() {
        let r = release();
        let a = new_instance_id(&r.app, &r.version);
        let b = new_instance_id(&r.app, &r.version);
        assert_ne!(a, b);
        assert!(a.0.starts_with("pulse-shop-v1-") && a.0.len() == "pulse-shop-v1-".len() + SUFFIX_LEN, "{a}");
        assert!(a.0.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }

    #[test]
    fn labels_round_trip() {
        let r = release();
        let id = new_instance_id(&r.app, &r.version);
        let at = UNIX_EPOCH + Duration::from_millis(1_764_361_234_567);
        let labels = instance_labels(&r, &id, at).unwrap();
        assert_eq!(labels[MANAGED], "true");
        assert_eq!(labels[INSTANCE], id.0);
        let back = decode_release(&labels, "c").unwrap();
        assert_eq!(back, r);
        assert!(same_release(&back, &r));
        assert_eq!(decode_created_at(&labels), Some(at));
    }

    #[test]
    fn other_release_differs_and_sub_second_precision_is_ignored() {
        let r = release();
        let other = Release::builder("shop", "v1", "shop:v2").env("A", "b").build().unwrap();
        assert!(!same_release(&r, &other));
        let fine = Release::builder("shop", "v1", "shop:v1")
            .env("A", "b")
            .stop_grace(Duration::from_millis(30_400))
            .build()
            .unwrap();
        let stored: Release = serde_json::from_str(&encode_release(&fine).unwrap()).unwrap();
        assert!(same_release(&stored, &fine));
    }

    #[test]
    fn broken_release_label_names_the_container_and_the_fix() {
        let labels = HashMap::from([(RELEASE.to_owned(), "{not json".to_owned())]);
        let e = decode_release(&labels, "pulse-shop-v1-abc").unwrap_err().to_string();
        assert!(e.contains("pulse-shop-v1-abc") && e.contains("docker rm -f"), "{e}");
    }

    #[test]
    fn retiring_marks_round_trip() {
        let id = InstanceId("pulse-shop-v1-abc123".into());
        let at = UNIX_EPOCH + Duration::from_millis(1_764_361_234_567);
        let marked = marked_name(&id, RetireMark::Marked(at));
        assert_eq!(marked, "pulse-shop-v1-abc123.retiring-1764361234567");
        assert_eq!(retire_mark(&format!("/{marked}")), Some(RetireMark::Marked(at)));
        let signalled = marked_name(&id, RetireMark::Signalled(at));
        assert_eq!(signalled, "pulse-shop-v1-abc123.sigterm-1764361234567");
        assert_eq!(retire_mark(&signalled), Some(RetireMark::Signalled(at)));
        assert_eq!(retire_mark("/pulse-shop-v1-abc123"), None);
        assert_eq!(retire_mark("/pulse-shop-v1-abc123.retiring-x"), None);
    }

    #[test]
    fn filters_select_app_and_version() {
        let r = release();
        let f = filters(&r.app, Some(&r.version));
        assert_eq!(
            f["label"],
            vec![
                "dev.pulse-deploy.managed=true".to_owned(),
                "dev.pulse-deploy.app=shop".into(),
                "dev.pulse-deploy.version=v1".into()
            ]
        );
    }
}
