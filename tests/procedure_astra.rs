//! astra-sideloader against the DevOps API double (`tests/common/astra.rs`), the nodetool double
//! (`tests/doubles/nodetool`) and real migration buckets: an s3s-fs server that checks the
//! session token of the temporary credentials (and refuses them once expired), and Azurite with
//! the SAS the API hands out.

use crate::astra_harness as harness;
use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::astra::{self, Config, DevOpsApi, Outcome, Upload};
use harness::*;

#[test]
fn aws_full_migration_with_expiring_credentials_and_a_multipart_data_file() {
    // 20 MiB Data.db: above ferry's 16 MiB single-PUT limit, so a multipart upload.
    let site = site(20 << 20);
    let (s3, api) = aws(|c| c.cred_lifetime = Duration::from_secs(3));
    s3.set_delay(Duration::from_millis(60)); // a slow link: the upload outlasts the credentials
    // The multipart upload is held once S3 accepted its CreateMultipartUpload until the API has
    // issued new credentials (it does so only once the first ones expired): its parts and
    // CompleteMultipartUpload must go out with the renewed credentials, set in place.
    s3.hold("?uploads");
    let mut f = command(
        &site,
        &api,
        Some(&s3),
        &[
            "-p",
            "concurrency=2",
            "-p",
            "renew_before=1s",
            "--log-json",
            "events.jsonl",
        ],
    );
    // stderr into a file, read while the run goes on: the held upload is released only once
    // ferry has put the renewed credentials into its store ("valid until" is logged after
    // set_credentials). Released as soon as the API issued them, the parts could go out in the
    // moment between the old keys' expiry and ferry's renewal, be refused with ExpiredToken and
    // restart the upload (seen on a loaded machine): that window is the double's (new keys only
    // once the old expired), not what this test is about.
    let err_path = site.ws.join("ferry.stderr");
    f.cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = f.cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let renewals = || {
        std::fs::read_to_string(&err_path)
            .unwrap_or_default()
            .matches("upload credentials valid until")
            .count()
    };
    while !(s3.held() >= 1 && s3.sts.issued().len() >= 2 && renewals() >= 2) {
        assert!(Instant::now() < deadline, "no held upload or no renewal");
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before the renewal"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    s3.release();
    let done = child.wait_with_output().unwrap();
    let out = common::Output {
        code: done.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&done.stdout).into_owned(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    };
    // One CreateMultipartUpload per big file (none restarted), completed with other keys than
    // it was started with: renewed in the open store (a new store would start the upload again).
    let seen = s3.requests_seen();
    let signed_with = |q: &common::s3::SeenRequest| {
        q.headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .and_then(|(_, v)| v.split("Credential=").nth(1))
            .and_then(|v| v.split('/').next())
            .map(str::to_string)
    };
    let creates: Vec<_> = seen
        .iter()
        .filter(|q| q.method == "POST" && q.uri.contains("?uploads"))
        .collect();
    assert!(!creates.is_empty(), "no multipart upload");
    let mut renewed_in_place = 0;
    for c in &creates {
        let path = c.uri.split('?').next().unwrap();
        let again = creates.iter().filter(|o| o.uri.starts_with(path)).count();
        assert_eq!(
            again, 1,
            "the multipart upload of {path} was started {again} times\n{}",
            out.stderr
        );
        let complete = seen
            .iter()
            .find(|q| {
                q.method == "POST"
                    && q.uri.starts_with(&format!("{path}?uploadId="))
                    && q.status == 200
            })
            .unwrap_or_else(|| panic!("{path} never completed"));
        if signed_with(complete) != signed_with(c) {
            renewed_in_place += 1;
        }
    }
    assert!(
        renewed_in_place >= 1,
        "no multipart upload went on with renewed keys (the held one was started with the first)"
    );
    out.code(0)
        .stderr_has("left out (secondary index): dse0: smart_home/")
        .stderr_has("CREATE TABLE IF NOT EXISTS smart_home.sensor_readings")
        .stderr_has("CREATE TYPE IF NOT EXISTS catalog.address")
        .stderr_has("index roomidx (secondary index")
        .stderr_has("index typeidx (SAI, ignored)")
        .stderr_has("MigrationDone")
        .stderr_has("cleanup at ")
        .stderr_has("dsbulk count")
        .stderr_lacks(&api.token());
    assert_eq!(api.initializes(), 1);
    assert_eq!(api.launches(), 1);
    assert_eq!(
        api.blips_served(),
        2,
        "the non-JSON answers after initialize"
    );
    let ids = api.migration_ids();
    check_upload(&site, &s3_objects(&s3, &api, &ids[0]));
    let issued = s3.sts.issued();
    assert!(
        issued.len() >= 2,
        "the credentials were never renewed ({} issued)",
        issued.len()
    );
    // The token and every issued key are in no output channel (stdout, stderr, --log-json, the
    // state files, ferry status).
    let token = api.token();
    let mut secrets: Vec<&str> = vec![&token];
    for c in &issued {
        secrets.push(&c.secret_key);
        secrets.push(&c.session_token);
    }
    common::secrets::assert_run_keeps_secrets(
        &secrets,
        &out,
        site.ws.path(),
        &site.ws.join("events.jsonl"),
        None,
    );
    // Each node snapshotted once with the docs' command, and listed.
    let log = std::fs::read_to_string(site.ws.join("nodetool.log")).unwrap();
    for node in NODES {
        assert!(
            log.contains(&format!("-h {node} snapshot -t {SNAP} smart_home catalog")),
            "{log}"
        );
        assert!(log.contains(&format!("-h {node} listsnapshots")), "{log}");
    }
    // The snapshot on disk still has its secondary index directory (ferry never modifies it).
    assert!(
        site.root
            .join(format!(
                "dse0/data1/smart_home/{}/snapshots/{SNAP}/.roomidx",
                astra::SENSOR_DIR
            ))
            .is_dir()
    );

    // A re-run is a no-op: the journal has every step, the API is not asked to do anything.
    let same = ["-p", "concurrency=2", "-p", "renew_before=1s"];
    let before = api.requests().len();
    run(&site, &api, Some(&s3), &same)
        .code(0)
        .stderr_has("already done");
    assert_eq!(
        api.requests().len(),
        before,
        "a finished run called the API again"
    );
    // With other parameters the steps run again, see the migration is done, and change nothing.
    let objects = s3.request_log().len();
    run(&site, &api, Some(&s3), &[])
        .code(0)
        .stderr_has("was launched already (MigrationDone)");
    assert_eq!(api.initializes(), 1);
    assert_eq!(api.launches(), 1);
    assert!(
        s3.request_log()[objects..]
            .iter()
            .all(|l| !l.starts_with("PUT") && !l.starts_with("POST")),
        "uploads after the launch"
    );
}

#[test]
fn killed_upload_resumes_the_same_migration_without_reuploading_finished_files() {
    let site = site(0);
    let (s3, api) = aws(|_| {});
    s3.set_delay(Duration::from_millis(150));
    let same = [
        "-p",
        "concurrency=1",
        "-p",
        "cleanup_time=2031-01-01T00:00:00Z",
    ];
    let mut f = command(&site, &api, Some(&s3), &same);
    f.cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = f.cmd.spawn().unwrap();
    let completed = |log: &[String]| -> Vec<String> {
        log.iter()
            .filter(|l| l.starts_with("PUT ") && l.ends_with(" 200") && !l.contains('?'))
            .map(|l| l.split(' ').nth(1).unwrap().to_string())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while completed(&s3.request_log()).len() < 8 {
        assert!(Instant::now() < deadline, "no upload progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL, mid-upload
    child.wait().unwrap();
    let first = completed(&s3.request_log());
    let id = api.migration_ids()[0].clone();
    assert_eq!(
        api.cleanup_time(&id).as_deref(),
        Some("2031-01-01T00:00:00Z"),
        "cleanup_time with action=migrate reschedules once ReceivingFiles"
    );
    let total = astra::expected_keys(&site.live, SNAP, &["smart_home", "catalog"]).len();
    assert!(
        first.len() < total,
        "everything was uploaded before the kill"
    );
    assert_eq!(api.launches(), 0);

    s3.set_delay(Duration::ZERO);
    let seen = s3.request_log().len();
    let out = run(&site, &api, Some(&s3), &same);
    out.code(0)
        .stderr_has("already done, skipping")
        .stderr_has("cleanup at 2031-01-01T00:00:00Z");
    assert_eq!(api.initializes(), 1, "the re-run opened another migration");
    let again: Vec<String> = completed(&s3.request_log()[seen..]);
    for key in &first {
        assert!(!again.contains(key), "{key} uploaded twice");
    }
    let ids = api.migration_ids();
    check_upload(&site, &s3_objects(&s3, &api, &ids[0]));
    assert_eq!(api.launches(), 1);
}

#[test]
fn azure_upload_with_the_sas_of_the_migration() {
    let Some(az) = common::azurite::azurite() else {
        return;
    };
    let site = site(0);
    let api = DevOpsApi::start(Config::new(Upload::Azure(az.clone())));
    let mut f = command(&site, &api, None, &[]);
    for k in common::azurite::UNSET_ENV {
        f.cmd.env_remove(k);
    }
    let out = f.run();
    out.code(0).stderr_has("MigrationDone");
    let id = &api.migration_ids()[0];
    let container = format!("mig-upload-{id}");
    let store = az.store(&container);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listed = rt.block_on(async {
        use futures::TryStreamExt;
        use object_store::{ObjectStore, ObjectStoreExt};
        let metas: Vec<_> = store.list(None).try_collect().await.unwrap();
        let mut out = BTreeMap::new();
        for m in metas {
            let key = m.location.to_string();
            let data = store.get(&m.location).await.unwrap().bytes().await.unwrap();
            if let Some(rel) = key.strip_prefix("sstables/") {
                out.insert(rel.to_string(), data.to_vec());
            }
        }
        out
    });
    check_upload(&site, &listed);
    az.delete_container(&container);
}

#[test]
fn failed_import_stops_with_the_apis_words_and_a_rerun_relaunches() {
    let site = site(0);
    let (s3, api) = aws(|c| {
        c.outcome = Outcome::Fail {
            status: "ImportFailed".into(),
            info: "schema mismatch: table smart_home.rooms column name has type text in the snapshot, varchar expected"
                .into(),
        }
    });
    let out = run(&site, &api, Some(&s3), &[]);
    out.code(1)
        .stderr_has("ImportFailed")
        .stderr_has("schema mismatch: table smart_home.rooms")
        .stderr_has("run again to relaunch")
        .stderr_has("ferry run astra-sideloader");
    assert_eq!(api.launches(), 1);

    // The operator fixes the target schema; the same command relaunches the same migration.
    api.set_outcome(Outcome::Done);
    let out = run(&site, &api, Some(&s3), &[]);
    out.code(0).stderr_has("MigrationDone");
    assert_eq!(api.initializes(), 1);
    assert_eq!(api.launches(), 2);
}

#[test]
fn materialized_views_stop_the_run_before_anything_is_initialized() {
    let site = site(0);
    astra::add_view(&site.root, "dse0");
    let (s3, api) = aws(|_| {});
    let out = run(&site, &api, Some(&s3), &[]);
    out.code(1)
        .stderr_has("materialized views cannot be migrated")
        .stderr_has("catalog.journal_by_publisher")
        .stderr_has("allow_views=true");
    assert_eq!(
        api.initializes(),
        0,
        "a migration was opened for a doomed run"
    );

    // allow_views leaves the view out and migrates the rest.
    let out = run(
        &site,
        &api,
        Some(&s3),
        &["-p", "allow_views=true", "--fresh"],
    );
    out.code(0).stderr_has("MigrationDone");
    let objects = s3_objects(&s3, &api, &api.migration_ids()[0]);
    assert!(objects.keys().all(|k| !k.contains("journal_by_publisher")));
}

#[test]
fn bad_token_unknown_migration_and_empty_ids_are_refused_clearly() {
    let site = site(0);
    let (s3, api) = aws(|_| {});
    // A wrong token: 401, said as such, and the token is not printed.
    let out = command(&site, &api, Some(&s3), &[])
        .env("token", "AstraCS:not-the-right-one")
        .run();
    out.code(1)
        .stderr_has("refused the token (HTTP 401)")
        .stderr_has("Database Administrator")
        .stderr_lacks("AstraCS:not-the-right-one");
    assert_eq!(api.initializes(), 0);

    // An unknown migration id: the API's 404, not a wait.
    let out = run(
        &site,
        &api,
        Some(&s3),
        &[
            "-p",
            "action=status",
            "-p",
            "migration_id=00000000-0000-0000-0000-000000000000",
        ],
    );
    out.code(1)
        .stderr_has("migration 00000000-0000-0000-0000-000000000000 not found")
        .stderr_has("check db_id and migration_id");

    // An empty database id would send `//` (the API's "Moved Permanently"): refused before asking.
    let before = api.requests().len();
    // It is a bad parameter: exit 2 before any step, no snapshot taken.
    let log = site.ws.join("nodetool.log");
    let _ = std::fs::remove_file(&log);
    let out = run(&site, &api, Some(&s3), &["-p", "db_id=", "--fresh"]);
    out.code(2).stderr_has("parameter 'db_id' is empty");
    assert_eq!(api.requests().len(), before);
    assert!(!log.exists(), "nodetool ran for a run with an empty db_id");
}

#[test]
fn actions_status_pause_resume_reschedule_and_abort() {
    let site = site(0);
    let (s3, api) = aws(|c| c.import_time = Duration::from_secs(600));
    // Without a terminal and without --yes, the schema confirmation stops the run (exit 3)
    // before any migration is opened.
    let f = command_yes(&site, &api, Some(&s3), &[], false);
    let out = f.run();
    out.code(3);
    assert_eq!(
        api.initializes(),
        0,
        "confirm of the schema comes before initialize"
    );
    let out = run(&site, &api, Some(&s3), &["-p", "action=status"]);
    out.code(2).stderr_has("no migration in this state dir");

    // With --yes it initializes and uploads; the launch runs in the background (10 min import).
    let mut child = command(&site, &api, Some(&s3), &["--state", "launch-state"])
        .cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while api.launches() == 0 {
        assert!(Instant::now() < deadline, "never launched");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let id = api.migration_ids()[0].clone();
    let state = ["--state", "launch-state"];
    let act = |extra: &[&str]| {
        let mut all: Vec<&str> = state.to_vec();
        all.extend_from_slice(extra);
        run(&site, &api, Some(&s3), &all)
    };
    std::thread::sleep(Duration::from_millis(500)); // past the status lag
    act(&["-p", "action=status"])
        .code(0)
        .stderr_has(&format!("migration {id}: ImportInProgress"));
    act(&["-p", "action=pause"]).code(0);
    assert!(api.paused(&id));
    act(&["-p", "action=resume"]).code(0);
    assert!(!api.paused(&id));
    // A second status is asked again (actions are never skipped as done).
    act(&["-p", "action=status"])
        .code(0)
        .stderr_has("ImportInProgress");
    // Rescheduling during a long import (the docs advise it for multi-day imports).
    act(&["-p", "action=reschedule-cleanup", "-p", "cleanup_time=14d"]).code(0);
    let when = api.cleanup_time(&id).unwrap();
    let secs = chrono::DateTime::parse_from_rfc3339(&when)
        .unwrap()
        .timestamp()
        - chrono::Utc::now().timestamp();
    assert!((13 * 86400..=14 * 86400 + 60).contains(&secs), "{when}");
    act(&["-p", "action=reschedule-cleanup"])
        .code(2)
        .stderr_has("cleanup_time");
    act(&["-p", "action=abort"]).code(0);
    assert!(api.aborted(&id));
}

#[test]
fn reschedule_cleanup_sends_the_time_on_the_cleanup_url() {
    let site = site(0);
    let (s3, api) = aws(|_| {});
    run(&site, &api, Some(&s3), &[])
        .code(0)
        .stderr_has("MigrationDone");
    let id = api.migration_ids()[0].clone();
    // From another state dir, naming the migration.
    let dir = site.ws.join("resched");
    let out = run(
        &site,
        &api,
        Some(&s3),
        &[
            "--state",
            dir.to_str().unwrap(),
            "-p",
            &format!("migration_id={id}"),
            "-p",
            "action=reschedule-cleanup",
            "-p",
            "cleanup_time=2030-03-31T14:30:00Z",
        ],
    );
    out.code(0).stderr_has("cleanup at 2030-03-31T14:30:00Z");
    assert_eq!(
        api.cleanup_time(&id).as_deref(),
        Some("2030-03-31T14:30:00Z")
    );
    let posted: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("/cleanup"))
        .collect();
    assert_eq!(posted.len(), 1);
    assert!(
        posted[0]
            .path
            .contains("/cleanup?option.cleanupTime=2030-03-31T14"),
        "{}",
        posted[0].path
    );
}

#[test]
fn dry_run_initializes_nothing_and_snapshots_nothing() {
    let site = site(0);
    let (s3, api) = aws(|_| {});
    let out = run(&site, &api, Some(&s3), &["--dry-run"]);
    out.code(0).stderr_has("would");
    assert_eq!(api.initializes(), 0);
    assert_eq!(api.launches(), 0);
    let log = std::fs::read_to_string(site.ws.join("nodetool.log")).unwrap_or_default();
    assert!(!log.contains(" snapshot "), "{log}");
    assert!(
        !site
            .root
            .join(format!(
                "dse0/data1/smart_home/{}/snapshots",
                astra::SENSOR_DIR
            ))
            .exists()
    );
}

#[test]
fn unreachable_node_stops_the_run_and_the_rerun_reuses_the_snapshots_taken() {
    let site = site(0);
    let (s3, api) = aws(|_| {});
    let tables = [
        "-p",
        "keyspaces=smart_home.sensor_readings,smart_home.rooms",
    ];
    let out = command(&site, &api, Some(&s3), &tables)
        .env("FERRY_NODETOOL_FAIL", "dse1")
        .run();
    out.code(1)
        .stderr_has("on dse1 failed")
        .stderr_has("Failed to connect to 'dse1:7199'")
        .stderr_has("run the same command again");
    assert_eq!(api.initializes(), 0);

    // Fixed; this time the nodes run Cassandra 4.0 (listsnapshots without the time columns).
    let out = command(&site, &api, Some(&s3), &tables)
        .env("FERRY_NODETOOL_VERSION", "4.0")
        .run();
    out.code(0)
        .stderr_has("dse0: snapshot sl1 exists already (2 table(s)), using it")
        .stderr_has("MigrationDone");
    let log = std::fs::read_to_string(site.ws.join("nodetool.log")).unwrap();
    let snapshots: Vec<&str> = log.lines().filter(|l| l.contains(" snapshot ")).collect();
    assert_eq!(
        snapshots,
        vec![
            "-h dse0 snapshot -t sl1 -kt smart_home.sensor_readings,smart_home.rooms",
            "-h dse1 snapshot -t sl1 -kt smart_home.sensor_readings,smart_home.rooms",
        ],
        "{log}"
    );
    let objects = s3_objects(&s3, &api, &api.migration_ids()[0]);
    assert!(!objects.is_empty());
    assert!(
        objects.keys().all(|k| !k.contains("/catalog/")),
        "a table outside keyspaces was uploaded"
    );
    assert!(
        objects
            .keys()
            .any(|k| k.starts_with("dse1/smart_home/rooms-"))
    );
}

#[test]
fn credentials_cut_short_mid_upload_are_renewed_after_the_refusal() {
    let site = site(0);
    let (s3, api) = aws(|_| {});
    s3.set_delay(Duration::from_millis(60));
    let mut f = command(&site, &api, Some(&s3), &["-p", "concurrency=2"]);
    f.cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = f.cmd.spawn().unwrap();
    let puts = || {
        s3.request_log()
            .iter()
            .filter(|l| l.starts_with("PUT ") && l.ends_with(" 200"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while puts() < 6 {
        assert!(Instant::now() < deadline, "no upload progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The API's credentials stop working long before their announced expiry.
    s3.sts.expire_all();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        s3.sts.expired_refusals() >= 1,
        "no upload was refused with ExpiredToken"
    );
    assert!(
        s3.sts.issued().len() >= 2,
        "the credentials were not renewed"
    );
    check_upload(&site, &s3_objects(&s3, &api, &api.migration_ids()[0]));
}

/// The DevOps API behind a flaky network: every 3rd GET answered 503 and every 4th reset
/// without an answer. The reads (migration status polls, credentials) are retried; the
/// initialize and launch POSTs reach the API once each; the upload is complete.
#[test]
fn a_flaky_network_to_the_devops_api_is_retried_for_reads_and_never_doubles_a_post() {
    use common::fault_proxy::{FaultProxy, Faults};
    let site = site(0);
    let (s3, api) = aws(|_| {});
    let proxy = FaultProxy::start(
        &api.url(),
        Faults::new()
            .fail_every(3)
            .reset_every(4)
            .only_methods(&["GET"]),
    );
    let out = run(
        &site,
        &api,
        Some(&s3),
        &["-p", &format!("api_url={}", proxy.endpoint)],
    );
    out.code(0).stderr_has("MigrationDone");
    assert!(
        proxy.failed() >= 1 && proxy.reset() >= 1,
        "no fault was injected: {} failed, {} reset",
        proxy.failed(),
        proxy.reset()
    );
    assert_eq!(api.initializes(), 1, "initialize sent more than once");
    assert_eq!(api.launches(), 1, "launch sent more than once");
    let ids = api.migration_ids();
    check_upload(&site, &s3_objects(&s3, &api, &ids[0]));
}
