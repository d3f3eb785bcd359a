//! druid-deep-storage against real MariaDB and PostgreSQL holding Druid's `druid_segments` table
//! (the original 9 columns and the Druid 28+ form), a local deep storage with zip-style and
//! directory-style segments, a realtime UUID path, a tombstone, a shared load spec, an unused
//! segment and a row already on S3; targets are s3s-fs and a directory. The Coordinator is a
//! double (tests/common/druid.rs) since Druid cannot run here.

use crate::common;

use std::collections::BTreeMap;

use common::Workspace;
use common::db;
use common::druid::{self as fx, Kind, Seg, expected, originals, run, site};
use common::s3::S3Server;

/// The metadata store password of the main MariaDB test (searched for in every output).
const META_PW: &str = "Dru1d-Meta-Pw";

const BUCKET: &str = "druid-deep";
const BASE: &str = "segments/prod";

fn s3_spec(dir: &str) -> String {
    format!(
        r#"{{"type":"s3_zip","bucket":"{BUCKET}","key":"{BASE}/{dir}/index.zip","S3Schema":"s3n"}}"#
    )
}

/// Checks the object of every local segment: zip-style byte-identical, directories zipped flat.
fn check_objects(segs: &[Seg], read: impl Fn(&str) -> Option<Vec<u8>>) {
    for s in segs {
        let key = format!("{}/index.zip", fx::expected_dir(segs, s));
        match &s.kind {
            Kind::Zip(data) => assert_eq!(read(&key).as_deref(), Some(&data[..]), "{key}"),
            Kind::Dir(files) => {
                let got = fx::unzip(&read(&key).unwrap_or_else(|| panic!("{key} missing")));
                let want: BTreeMap<String, Vec<u8>> = files.iter().cloned().collect();
                assert_eq!(
                    got.keys().collect::<Vec<_>>(),
                    want.keys().collect::<Vec<_>>(),
                    "{key}"
                );
                assert!(got == want, "{key}: zipped files differ");
            }
            _ => {}
        }
    }
}

fn tables(url: &str) -> Vec<String> {
    let out = if url.starts_with("postgres") {
        db::psql_exec(
            url,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1;",
        )
    } else {
        db::mysql_exec(url, "SHOW TABLES;")
    };
    db::tsv_rows(&out)
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

#[test]
fn mariadb_druid28_to_s3_verified_rerun_noop_and_rollback() {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    // The metadata store is reached as a user with a password distinct enough to search for.
    let admin = db::fresh_mysql_db("druid_s3");
    let dbname = db::url_database(&admin).unwrap();
    db::mysql_exec(
        &admin,
        &format!(
            "CREATE OR REPLACE USER 'druid_meta'@'%' IDENTIFIED BY '{META_PW}'; \
             CREATE OR REPLACE USER 'druid_meta'@'localhost' IDENTIFIED BY '{META_PW}'; \
             GRANT ALL ON `{dbname}`.* TO 'druid_meta'@'%'; \
             GRANT ALL ON `{dbname}`.* TO 'druid_meta'@'localhost';"
        ),
    );
    let mut meta = url::Url::parse(&admin).unwrap();
    meta.set_username("druid_meta").unwrap();
    meta.set_password(Some(META_PW)).unwrap();
    let site = site(meta.to_string(), true);
    let coord = fx::Coordinator::start_with(fx::CoordinatorSpec {
        datasources: vec!["wiki".into(), "logs".into(), "big".into()],
        start_pct: 40.0,
        steps: 3,
        empty_polls: 0,
        view: Some(fx::View::Live(site.url.clone())),
    });
    let target = format!("target=s3://{BUCKET}/{BASE}");
    let coordinator = format!("coordinator_url={}", coord.url());
    let out = run(
        &site,
        &[
            "-p",
            &target,
            "-p",
            &coordinator,
            "-p",
            "poll_interval=0.05",
            "--log-json",
            "events.jsonl",
        ],
        Some(&s3),
    );
    out.code(0)
        .stderr_has("9 segment(s): 7 local in 6 file(s) to move, 1 tombstone(s), 1 already off local storage")
        .stderr_has("druid.storage.type=s3")
        .stderr_has("druid.storage.baseKey=segments/prod")
        .stderr_has("load status: wiki 40.0%")
        .stderr_has("7 segment row(s) point at 6 object(s)")
        .stderr_lacks(&fx::password(&site.url));
    common::secrets::assert_run_keeps_secrets(
        &[META_PW, &s3.secret_key],
        &out,
        site.ws.path(),
        &site.ws.join("events.jsonl"),
        None,
    );

    // Every payload: local rows rewritten exactly as Druid's S3 pusher writes, all else kept.
    let got = fx::payloads(&site.url);
    assert_eq!(got, expected(&site.segs, s3_spec));
    check_objects(&site.segs, |k| s3.read_file(BUCKET, &format!("{BASE}/{k}")));
    assert_eq!(
        s3.list_files(BUCKET).len(),
        6,
        "{:?}",
        s3.list_files(BUCKET)
    );
    assert!(coord.polls() >= 3, "polled {} times", coord.polls());
    // The shared pair points at one object, the owner's.
    let shared: Vec<&Seg> = site
        .segs
        .iter()
        .filter(|s| s.ds == "logs" && s.start.contains("-10T"))
        .collect();
    assert!(got[&shared[0].id].contains(&shared[0].default_dir()));
    assert!(got[&shared[1].id].contains(&shared[0].default_dir()));
    // Druid 28 columns untouched.
    let cols = fx::other_columns(&site.url, true);
    assert!(cols.iter().any(|r| r[8] == "2024-02-02T10:00:00.000Z"));

    // The backup table holds the original payloads; the CSV backup is export-metadata's form.
    let backups: Vec<String> = tables(&site.url)
        .into_iter()
        .filter(|t| t.starts_with("druid_segments_backup_"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let backup_rows = db::tsv_rows(&db::mysql_exec(
        &site.url,
        &format!("SELECT id, HEX(payload) FROM `{}` ORDER BY id;", backups[0]),
    ));
    assert_eq!(backup_rows.len(), 9);
    let csv_dirs: Vec<_> =
        std::fs::read_dir(site.ws.join(".ferry/state/druid-deep-storage/metadata"))
            .unwrap()
            .collect();
    assert_eq!(csv_dirs.len(), 1);
    let csv = std::fs::read_to_string(
        csv_dirs[0]
            .as_ref()
            .unwrap()
            .path()
            .join("druid_segments.csv"),
    )
    .unwrap();
    assert_eq!(csv.lines().count(), 9);
    assert!(
        csv.contains(r#""{""dataSource"":""logs"""#),
        "payloads are JSON with doubled quotes"
    );

    // JSON events carry the step summary.
    let events = common::json_lines(&site.ws.join("events.jsonl"));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "step_finished" && e["step"] == "copy-segments"),
        "no step_finished event"
    );

    // A re-run from a fresh state dir finds nothing local: no copy, no backup, no rewrite.
    let before = s3.requests();
    let again = run(&site, &["-p", &target, "--state", "st2"], Some(&s3));
    again
        .code(0)
        .stderr_has("0 local in 0 file(s)")
        .stderr_has("no local segments to rewrite");
    assert_eq!(fx::payloads(&site.url), got);
    assert_eq!(
        tables(&site.url)
            .iter()
            .filter(|t| t.starts_with("druid_segments_backup_"))
            .count(),
        1
    );
    assert!(
        s3.requests() - before < 20,
        "re-run made {} S3 requests",
        s3.requests() - before
    );

    // Rollback puts every original payload back.
    run(&site, &["-p", &target, "-p", "action=rollback"], Some(&s3))
        .code(0)
        .stderr_has("restored 7 payload(s)");
    assert_eq!(fx::payloads(&site.url), originals(&site.segs));
    db::drop_mysql_db(&site.url);
}

#[test]
fn postgres_old_schema_to_directory_and_dry_run_changes_nothing() {
    if db::postgres_url_or_skip().is_none() {
        return;
    }
    let site = site(db::fresh_postgres_db("druid_dir"), false);
    let new_dir = site.ws.join("new-deep-storage");
    let target = format!("target=file://{}", new_dir.display());

    let dry = run(&site, &["-p", &target, "--dry-run", "--state", "dry"], None);
    dry.code(0);
    assert_eq!(fx::payloads(&site.url), originals(&site.segs));
    assert!(!new_dir.exists() || std::fs::read_dir(&new_dir).unwrap().next().is_none());
    assert_eq!(tables(&site.url), vec!["druid_segments".to_string()]);

    run(&site, &["-p", &target, "-p", "datasources=wiki,logs"], None).code(0);
    let local_spec = |dir: &str| {
        format!(
            r#"{{"type":"local","path":"{}/{dir}/index.zip"}}"#,
            new_dir.display()
        )
    };
    let mut want = expected(&site.segs, local_spec);
    // The filtered-out data source stays where it was.
    for s in site.segs.iter().filter(|s| s.ds == "big") {
        want.insert(s.id.clone(), s.payload.clone());
    }
    assert_eq!(fx::payloads(&site.url), want);
    let segs: Vec<Seg> = site
        .segs
        .iter()
        .filter(|s| s.ds != "big")
        .cloned()
        .collect();
    check_objects(&segs, |k| std::fs::read(new_dir.join(k)).ok());
    assert!(!new_dir.join("big").exists());
    db::drop_postgres_db(&site.url);
}

#[test]
fn failed_copy_leaves_metadata_untouched_and_rerun_resumes() {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let site = site(db::fresh_mysql_db("druid_fail"), true);
    let target = format!("target=s3://{BUCKET}/{BASE}");
    // One segment file is missing (a disk was not mounted, say).
    let unused = site.segs.iter().find(|s| !s.used).unwrap();
    let path = unused.path.clone().unwrap();
    std::fs::rename(&path, format!("{path}.away")).unwrap();

    let out = run(&site, &["-p", &target], Some(&s3));
    out.code(1)
        .stderr_has("1 segment file(s) are missing from local deep storage; nothing was changed")
        .stderr_has(&path)
        .stderr_has("skip_missing=true");
    assert_eq!(fx::payloads(&site.url), originals(&site.segs));
    assert!(
        tables(&site.url)
            .iter()
            .all(|t| !t.starts_with("druid_segments_backup_"))
    );

    // An upload that fails half-way (S3 refuses the big segment) fails the copy step too.
    std::fs::rename(format!("{path}.away"), &path).unwrap();
    let proxy = common::fault_proxy::FaultProxy::start(
        &s3.endpoint,
        common::fault_proxy::Faults::new()
            .fail_every(1)
            .fail_status(500)
            .path_contains("/big/"),
    );
    let mut f = site
        .ws
        .ferry()
        .args([
            "run",
            "druid-deep-storage",
            "--yes",
            "-p",
            &format!("druid_conf={}", site.conf.display()),
            "-p",
            &target,
        ])
        .env("DRUID_METADATA_PASSWORD", &fx::password(&site.url));
    f.cmd.env_remove("AWS_CA_BUNDLE");
    s3.apply_env_via(&mut f.cmd, &proxy.endpoint);
    let out = f.run();
    out.code(1)
        .stderr_has("1 of 6 segment file(s) failed to copy; the metadata was not changed");
    assert_eq!(fx::payloads(&site.url), originals(&site.segs));

    // The re-run copies only what is missing and completes.
    let out = run(&site, &["-p", &target], Some(&s3));
    out.code(0)
        .stderr_has("copied 1 segment file(s)")
        .stderr_has("5 already there");
    assert_eq!(fx::payloads(&site.url), expected(&site.segs, s3_spec));
    check_objects(&site.segs, |k| s3.read_file(BUCKET, &format!("{BASE}/{k}")));
    db::drop_mysql_db(&site.url);
}

#[test]
fn failed_rewrite_rolls_back_every_row() {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let site = site(db::fresh_mysql_db("druid_tx"), true);
    // The last local row refuses its update: a server-side error mid-transaction.
    let victim = site
        .segs
        .iter()
        .filter(|s| s.is_local())
        .map(|s| s.id.clone())
        .max()
        .unwrap();
    db::mysql_exec(
        &site.url,
        &format!(
            "DELIMITER //\nCREATE TRIGGER refuse BEFORE UPDATE ON druid_segments FOR EACH ROW BEGIN \
             IF NEW.id = '{victim}' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by test trigger'; END IF; END//\nDELIMITER ;\n"
        ),
    );
    let target = format!("target=s3://{BUCKET}/{BASE}");
    let out = run(&site, &["-p", &target], Some(&s3));
    out.code(1)
        .stderr_has("refused by test trigger")
        .stderr_has("rewrite-load-specs");
    assert_eq!(
        fx::payloads(&site.url),
        originals(&site.segs),
        "the transaction was not rolled back"
    );

    db::mysql_exec(&site.url, "DROP TRIGGER refuse;");
    let out = run(&site, &["-p", &target], Some(&s3));
    out.code(0).stderr_has("rewrote 7 load spec(s)");
    assert_eq!(fx::payloads(&site.url), expected(&site.segs, s3_spec));
    db::drop_mysql_db(&site.url);
}

#[test]
fn bad_configuration_is_refused_before_any_change() {
    let ws = Workspace::new();
    // Derby in direct mode: explained, exit 2.
    let conf = ws.write(
        "common.runtime.properties",
        "druid.metadata.storage.type=derby\ndruid.metadata.storage.connector.connectURI=jdbc:derby://localhost:1527/var/druid/metadata.db\n",
    );
    let out = ws
        .ferry()
        .args([
            "run",
            "druid-deep-storage",
            "--yes",
            "-p",
            &format!("druid_conf={}", conf.display()),
            "-p",
            "target=s3://b-1/x",
        ])
        .run();
    out.code(2).stderr_has("uses Derby").stderr_has("mode=csv");
    // HDFS targets are named as unsupported.
    let out = ws
        .ferry()
        .args([
            "run",
            "druid-deep-storage",
            "--yes",
            "-p",
            &format!("druid_conf={}", conf.display()),
            "-p",
            "target=hdfs://nn/druid",
        ])
        .run();
    out.code(2).stderr_has("HDFS targets are not supported");
    // A password provider pointing at an unset variable.
    let conf2 = ws.write(
        "c2.properties",
        "druid.metadata.storage.type=mysql\ndruid.metadata.storage.connector.connectURI=jdbc:mysql://127.0.0.1:1/druid\n\
         druid.metadata.storage.connector.user=druid\n\
         druid.metadata.storage.connector.password={\"type\":\"environment\",\"variable\":\"NOT_SET_FOR_FERRY\"}\n",
    );
    let out = ws
        .ferry()
        .args([
            "run",
            "druid-deep-storage",
            "--yes",
            "-p",
            &format!("druid_conf={}", conf2.display()),
            "-p",
            "target=s3://b-1/x",
        ])
        .run();
    out.code(1).stderr_has("NOT_SET_FOR_FERRY");
}

#[test]
fn killed_copy_resumes_without_copying_finished_segments() {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let site = site(db::fresh_mysql_db("druid_kill"), true);
    let target = format!("target=s3://{BUCKET}/{BASE}");
    let mut f = site
        .ws
        .ferry()
        .args([
            "run",
            "druid-deep-storage",
            "--yes",
            "-p",
            &format!("druid_conf={}", site.conf.display()),
            "-p",
            &target,
            "-p",
            "concurrency=1",
            "-p",
            "zip_level=9",
        ])
        .env("DRUID_METADATA_PASSWORD", &fx::password(&site.url));
    f.cmd.env_remove("AWS_CA_BUNDLE");
    s3.apply_env(&mut f.cmd);
    f.cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = f.cmd.spawn().unwrap();
    let manifest = site.ws.join(".ferry/state/druid-deep-storage/copied.jsonl");
    let lines = || {
        std::fs::read_to_string(&manifest)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while lines() < 3 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let landed = lines();
    assert!(landed < 6, "everything landed before the kill");
    assert_eq!(
        fx::payloads(&site.url),
        originals(&site.segs),
        "metadata changed before every copy was verified"
    );

    let out = run(&site, &["-p", &target], Some(&s3));
    out.code(0);
    // The object whose upload finished in the instant before the kill, before its manifest
    // line, is found in the target and not copied again: `landed` or `landed + 1` are there.
    let resumed = (landed..=landed + 1).any(|there| {
        out.stderr
            .contains(&format!("copied {} segment file(s)", 6 - there))
            && out.stderr.contains(&format!("{there} already there"))
    });
    assert!(
        resumed,
        "expected {landed} (or {}) segment files already there and the rest copied:\n{}",
        landed + 1,
        out.stderr
    );
    assert_eq!(fx::payloads(&site.url), expected(&site.segs, s3_spec));
    check_objects(&site.segs, |k| s3.read_file(BUCKET, &format!("{BASE}/{k}")));
    db::drop_mysql_db(&site.url);
}
