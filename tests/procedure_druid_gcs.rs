//! druid-deep-storage to a `gs://bucket/prefix` target end to end: real MariaDB and PostgreSQL
//! holding Druid's `druid_segments`, the local deep storage of tests/common/druid.rs (zip-style
//! and `index/` segments, one of 20 MiB, a realtime UUID path, a tombstone, a shared load spec,
//! an unused segment, a row already on S3), and the GCS emulator fake-gcs-server
//! (tests/setup/gcs.sh), checked through its own JSON API (tests/common/gcs.rs), not ferry's.
//!
//! What is right is what Druid's google extension does (apache/druid
//! extensions-core/google-extensions/src/main/java/org/apache/druid/storage/google/):
//! - GoogleDataSegmentPusher.push: `storageDir = getStorageDir(segment, useUniquePath)`, the
//!   interface default, i.e. DataSegmentPusher.getDefaultStorageDir
//!   (processing/.../segment/loading/DataSegmentPusher.java): the same
//!   `dataSource/start_end/version/partitionNum[/uuid]` as S3, colons kept. pushToPath names the
//!   object `buildPath(storageDir + "/" + "index.zip")`, and buildPath prepends
//!   `druid.google.prefix + "/"` only when the prefix is not null or empty.
//! - makeLoadSpec: `ImmutableMap.of("type", "google", "bucket", bucket, "path", indexPath)`, so
//!   the loadSpec is `{"type":"google","bucket":B,"path":FULL_OBJECT_NAME}` in that order
//!   (GoogleStorageDruidModule.SCHEME = "google"); GoogleLoadSpec requires both fields.
//! - GoogleDataSegmentPuller.getSegmentFiles: a path not ending in `/` is one zip, downloaded
//!   from `bucket`/`path` (GoogleByteSource) and unpacked by CompressionUtils.unzip(ByteSource,
//!   File, ..., cacheLocally=false), i.e. java.util.zip.ZipInputStream. Here the objects are read
//!   back from the emulator and through tests/java/ZipCheck.java, which does the same.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::db;
use common::druid::{self as fx, Kind, Seg, originals, site};
use common::gcs::{Gcs, gcs};

const PREFIX: &str = "druid/segments";

/// The loadSpec GoogleDataSegmentPusher.makeLoadSpec writes for `dir` under `prefix`.
fn google_spec(bucket: &str, prefix: &str, dir: &str) -> String {
    let path = if prefix.is_empty() {
        format!("{dir}/index.zip")
    } else {
        format!("{prefix}/{dir}/index.zip")
    };
    let q = |v: &str| serde_json::to_string(v).unwrap();
    format!(
        r#"{{"type":"google","bucket":{},"path":{}}}"#,
        q(bucket),
        q(&path)
    )
}

/// Every row's expected payload: local rows get the google loadSpec, every other byte kept
/// (the pusher's `withSize(indexSize)` is CompressionUtils.zip's count of *uncompressed* bytes,
/// what the local pusher recorded, so `size` does not change).
fn expected(segs: &[Seg], bucket: &str, prefix: &str) -> BTreeMap<String, String> {
    fx::expected(segs, |dir| google_spec(bucket, prefix, dir))
}

/// The object names Druid's pusher would have written for the local segments (one per file).
fn expected_names(segs: &[Seg], prefix: &str) -> BTreeSet<String> {
    segs.iter()
        .filter(|s| matches!(s.kind, Kind::Zip(_) | Kind::Dir(_)))
        .map(|s| {
            let k = format!("{}/index.zip", fx::expected_dir(segs, s));
            if prefix.is_empty() {
                k
            } else {
                format!("{prefix}/{k}")
            }
        })
        .collect()
}

/// Checks every object in the bucket: exactly the expected names, zip-style segments byte for
/// byte, `index/` directories zipped flat (same names and bytes), the emulator's `size` equal to
/// the bytes served, and every object read by java.util.zip.ZipInputStream with each entry's size
/// and CRC-32 as in the source. Returns name -> generation (to prove a re-run rewrote nothing).
fn check_bucket(g: &Gcs, bucket: &str, prefix: &str, segs: &[Seg]) -> BTreeMap<String, String> {
    let listed: BTreeSet<String> = g.list(bucket, "").into_iter().collect();
    assert_eq!(listed, expected_names(segs, prefix), "objects in {bucket}");
    let tmp = tempfile::tempdir().unwrap();
    let (mut files, mut want_java) = (Vec::new(), BTreeSet::new());
    let mut generations = BTreeMap::new();
    for s in segs {
        let want: BTreeMap<String, Vec<u8>> = match &s.kind {
            Kind::Zip(data) => fx::unzip(data),
            Kind::Dir(content) => content.iter().cloned().collect(),
            _ => continue,
        };
        let dir = fx::expected_dir(segs, s);
        let name = if prefix.is_empty() {
            format!("{dir}/index.zip")
        } else {
            format!("{prefix}/{dir}/index.zip")
        };
        let data = g
            .get(bucket, &name)
            .unwrap_or_else(|| panic!("{name} missing"));
        if let Kind::Zip(orig) = &s.kind {
            assert!(
                data == *orig,
                "{name}: not the local index.zip byte for byte"
            );
        }
        let got = fx::unzip(&data);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{name}"
        );
        assert!(got == want, "{name}: zipped files differ");
        let meta = g.metadata(bucket, &name).expect("metadata");
        assert_eq!(
            meta["size"].as_str(),
            Some(data.len().to_string().as_str()),
            "{name}: {meta}"
        );
        generations.insert(name.clone(), meta["generation"].to_string());
        let f = tmp.path().join(format!("{}.zip", files.len()));
        std::fs::write(&f, &data).unwrap();
        for (entry, bytes) in &want {
            want_java.insert(format!(
                "{}\t{entry}\t{}\t{:08x}",
                f.display(),
                bytes.len(),
                fx::crc32(bytes)
            ));
        }
        files.push(f);
    }
    if fx::java_or_skip("the ZipInputStream read of the GCS objects") {
        let got: BTreeSet<String> = fx::java_zip_read(&files)
            .unwrap_or_else(|e| panic!("java.util.zip.ZipInputStream refused an object: {e}"))
            .into_iter()
            .collect();
        assert_eq!(got, want_java);
    }
    generations
}

fn backup_tables(url: &str) -> Vec<String> {
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
        .filter(|t| t.starts_with("druid_segments_backup_"))
        .collect()
}

fn run_gcs(site: &fx::Site, g: &Gcs, extra: &[&str]) -> common::Output {
    let mut f = fx::ferry_cmd(site, extra);
    g.apply_env(&mut f.cmd);
    f.run()
}

#[test]
fn mariadb_druid28_to_gcs_layout_load_specs_java_reader_rerun_and_dry_run() {
    let Some(g) = gcs() else { return };
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let site = site(db::fresh_mysql_db("druid_gcs"), true);
    let bucket = g.unique_bucket("druid-gcs");
    let target = format!("target=gs://{bucket}/{PREFIX}");

    // Dry run: the plan and the settings, but no object, no backup table, no payload change.
    let dry = run_gcs(&site, &g, &["-p", &target, "--dry-run", "--state", "dry"]);
    dry.code(0)
        .stderr_has("9 segment(s): 7 local in 6 file(s) to move, 1 tombstone(s), 1 already off local storage")
        .stderr_has("druid.storage.type=google");
    assert_eq!(g.list(&bucket, ""), Vec::<String>::new(), "dry run wrote");
    assert_eq!(fx::payloads(&site.url), originals(&site.segs));
    assert_eq!(backup_tables(&site.url), Vec::<String>::new());

    let coord = fx::Coordinator::start_with(fx::CoordinatorSpec {
        datasources: vec!["wiki".into(), "logs".into(), "big".into()],
        start_pct: 50.0,
        steps: 2,
        empty_polls: 1,
        view: Some(fx::View::Live(site.url.clone())),
    });
    let coordinator = format!("coordinator_url={}", coord.url());
    let out = run_gcs(
        &site,
        &g,
        &[
            "-p",
            &target,
            "-p",
            &coordinator,
            "-p",
            "poll_interval=0.05",
        ],
    );
    out.code(0)
        .stderr_has("copied 6 segment file(s) (3 zipped from index/ directories")
        .stderr_has("rewrote 7 load spec(s)")
        // What common.runtime.properties must say (GoogleAccountConfig under druid.google).
        .stderr_has("druid.storage.type=google")
        .stderr_has(&format!("druid.google.bucket={bucket}\n"))
        .stderr_has(&format!("druid.google.prefix={PREFIX}\n"))
        .stderr_has("druid-google-extensions")
        .stderr_has("GOOGLE_APPLICATION_CREDENTIALS")
        .stderr_has("7 segment row(s) point at 6 object(s)")
        .stderr_has("sizes and CRCs as ZipInputStream checks them")
        .stderr_has("the Coordinator lists 3 data source(s) fully loaded")
        .stderr_lacks(&fx::password(&site.url));

    // Every payload: the local rows carry exactly the google loadSpec, all else byte for byte.
    let got = fx::payloads(&site.url);
    assert_eq!(got, expected(&site.segs, &bucket, PREFIX));
    for s in site.segs.iter().filter(|s| s.is_local()) {
        let v: serde_json::Value = serde_json::from_str(&got[&s.id]).unwrap();
        // ImmutableMap.of("type", ..., "bucket", ..., "path", ...): Jackson writes that order
        // (serde_json keeps the text's order here: its preserve_order feature).
        let spec = v["loadSpec"].as_object().unwrap();
        assert_eq!(
            spec.keys().collect::<Vec<_>>(),
            ["type", "bucket", "path"],
            "{}",
            s.id
        );
        // The realtime segment keeps its UUID level (useUniquePath).
        if let Some(u) = &s.uuid {
            assert!(
                spec["path"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("/2/{u}/index.zip"))
            );
        }
    }
    let generations = check_bucket(&g, &bucket, PREFIX, &site.segs);
    assert_eq!(backup_tables(&site.url).len(), 1);

    // A re-run from a fresh state dir finds every row in the target: nothing copied or
    // rewritten, no second backup, every object the same generation.
    let again = run_gcs(&site, &g, &["-p", &target, "--state", "st2"]);
    again
        .code(0)
        .stderr_has("0 local in 0 file(s)")
        .stderr_has("(7 already in the target)")
        .stderr_has("no local segments to rewrite")
        .stderr_has("7 segment row(s) point at 6 object(s)");
    assert_eq!(fx::payloads(&site.url), got);
    assert_eq!(backup_tables(&site.url).len(), 1);
    assert_eq!(check_bucket(&g, &bucket, PREFIX, &site.segs), generations);

    // The same state dir again: still nothing changes.
    run_gcs(&site, &g, &["-p", &target]).code(0);
    assert_eq!(fx::payloads(&site.url), got);
    assert_eq!(check_bucket(&g, &bucket, PREFIX, &site.segs), generations);

    // Rollback restores the local loadSpecs; the objects stay.
    run_gcs(&site, &g, &["-p", &target, "-p", "action=rollback"])
        .code(0)
        .stderr_has("restored 7 payload(s)");
    assert_eq!(fx::payloads(&site.url), originals(&site.segs));
    assert_eq!(g.list(&bucket, "").len(), 6);
    db::drop_mysql_db(&site.url);
}

/// An empty prefix: GoogleDataSegmentPusher.buildPath leaves it out (no leading `/`), so the
/// objects sit at the bucket's root and `path` starts with the data source.
#[test]
fn postgres_old_schema_to_gcs_bucket_root() {
    let Some(g) = gcs() else { return };
    if db::postgres_url_or_skip().is_none() {
        return;
    }
    let site = site(db::fresh_postgres_db("druid_gcs"), false);
    let bucket = g.unique_bucket("druid-gcs-root");
    let target = format!("target=gs://{bucket}/");
    let out = run_gcs(&site, &g, &["-p", &target]);
    out.code(0)
        .stderr_has(&format!("druid.google.bucket={bucket}\n"))
        .stderr_has("druid.google.prefix=\n")
        .stderr_has("7 segment row(s) point at 6 object(s)");
    let got = fx::payloads(&site.url);
    assert_eq!(got, expected(&site.segs, &bucket, ""));
    assert!(got.values().all(|p| !p.contains(r#""path":"/"#)));
    check_bucket(&g, &bucket, "", &site.segs);
    let again = run_gcs(&site, &g, &["-p", &target, "--state", "st2"]);
    again.code(0).stderr_has("(7 already in the target)");
    assert_eq!(fx::payloads(&site.url), got);
    db::drop_postgres_db(&site.url);
}

/// A bucket that does not exist and an endpoint nothing answers on fail before the operator is
/// asked to stop the cluster (the target is opened, i.e. listed, first), naming the bucket or
/// endpoint and what to do, with no object, backup table or payload change.
#[test]
fn missing_bucket_and_unreachable_endpoint_change_nothing() {
    let Some(g) = gcs() else { return };
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let site = site(db::fresh_mysql_db("druid_gcs_err"), true);
    let missing = format!(
        "druid-gcs-missing-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let out = run_gcs(
        &site,
        &g,
        &["-p", &format!("target=gs://{missing}/{PREFIX}")],
    );
    out.code(1)
        .stderr_has("step 'confirm-shutdown' failed: [not_found]")
        .stderr_has(&format!("bucket '{missing}' does not exist"))
        .stderr_has("nothing was copied and the metadata was not changed")
        .stderr_has(&format!("gcloud storage buckets create gs://{missing}"))
        .stderr_lacks("confirmed by --yes");
    assert_eq!(fx::payloads(&site.url), originals(&site.segs));
    assert_eq!(backup_tables(&site.url), Vec::<String>::new());
    let probe = g
        .request("GET", &format!("/storage/v1/b/{missing}"), &[], b"")
        .unwrap();
    assert_eq!(probe.status, 404, "the run created the bucket {missing}");

    // Nothing listens on this port (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let bucket = g.unique_bucket("druid-gcs-err");
    let mut f = fx::ferry_cmd(
        &site,
        &[
            "-p",
            &format!("target=gs://{bucket}/{PREFIX}"),
            "--state",
            "st2",
        ],
    );
    g.apply_env(&mut f.cmd);
    f.cmd.env("STORAGE_EMULATOR_HOST", &endpoint);
    let out = f.run();
    out.code(1)
        .stderr_has("step 'confirm-shutdown' failed: [unavailable]")
        .stderr_has(&format!("GET {endpoint}/storage/v1/b/{bucket}/o"))
        .stderr_has("Connection refused")
        .stderr_has("nothing was copied and the metadata was not changed")
        .stderr_has("STORAGE_EMULATOR_HOST")
        .stderr_lacks("confirmed by --yes");
    assert_eq!(fx::payloads(&site.url), originals(&site.segs));
    assert_eq!(backup_tables(&site.url), Vec::<String>::new());
    assert_eq!(g.list(&bucket, ""), Vec::<String>::new());

    // Credentials (GOOGLE_APPLICATION_CREDENTIALS, what Druid's client reads too) aimed at a
    // plain-HTTP endpoint are refused before any request or change. (With STORAGE_EMULATOR_HOST
    // ferry sends none, as Google's client libraries do; fake-gcs-server checks no token, so
    // refused credentials cannot be shown here.)
    let mut f = fx::ferry_cmd(
        &site,
        &[
            "-p",
            &format!("target=gs://{bucket}/{PREFIX}"),
            "--state",
            "st3",
        ],
    );
    g.apply_env(&mut f.cmd);
    f.cmd
        .env_remove("STORAGE_EMULATOR_HOST")
        .env("GOOGLE_BASE_URL", &g.endpoint)
        .env(
            "GOOGLE_APPLICATION_CREDENTIALS",
            site.ws.join("no-such-key.json"),
        );
    let out = f.run();
    out.code(1)
        .stderr_has("step 'confirm-shutdown' failed: [invalid_input]")
        .stderr_has("will not send GCS credentials over plain HTTP")
        .stderr_has("STORAGE_EMULATOR_HOST=host:port for an emulator")
        .stderr_has("nothing was copied and the metadata was not changed")
        .stderr_lacks("confirmed by --yes");
    assert_eq!(fx::payloads(&site.url), originals(&site.segs));
    assert_eq!(backup_tables(&site.url), Vec::<String>::new());
    assert_eq!(g.list(&bucket, ""), Vec::<String>::new());
    db::drop_mysql_db(&site.url);
}

/// The emulator refuses the upload of one segment (every request naming `big/` answers 500,
/// retries included): the copy step fails naming it, the metadata and backup tables are untouched,
/// and the re-run copies only that segment and completes.
#[test]
fn refused_gcs_upload_leaves_metadata_untouched_and_rerun_copies_the_rest() {
    let Some(g) = gcs() else { return };
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let site = site(db::fresh_mysql_db("druid_gcs_fail"), true);
    let bucket = g.unique_bucket("druid-gcs-fail");
    let target = format!("target=gs://{bucket}/{PREFIX}");
    // Object names travel percent-encoded in the upload's query (`name=druid%2Fsegments%2Fbig...`).
    let proxy = common::fault_proxy::FaultProxy::start(
        &g.endpoint,
        common::fault_proxy::Faults::new()
            .fail_every(1)
            .fail_status(500)
            .path_contains("%2Fbig%2F"),
    );
    let mut f = fx::ferry_cmd(&site, &["-p", &target]);
    g.apply_env(&mut f.cmd);
    f.cmd.env("STORAGE_EMULATOR_HOST", &proxy.endpoint);
    let out = f.run();
    out.code(1)
        .stderr_has("1 of 6 segment file(s) failed to copy; the metadata was not changed")
        .stderr_has(&format!("{PREFIX}/big/"))
        .stderr_has("run the same command again");
    assert!(proxy.failed() > 0, "the proxy refused nothing");
    assert_eq!(fx::payloads(&site.url), originals(&site.segs));
    assert_eq!(backup_tables(&site.url), Vec::<String>::new());
    let listed = g.list(&bucket, "");
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert!(listed.iter().all(|k| !k.contains("/big/")), "{listed:?}");

    let out = run_gcs(&site, &g, &["-p", &target]);
    out.code(0)
        .stderr_has("copied 1 segment file(s)")
        .stderr_has("5 already there");
    assert_eq!(
        fx::payloads(&site.url),
        expected(&site.segs, &bucket, PREFIX)
    );
    check_bucket(&g, &bucket, PREFIX, &site.segs);
    db::drop_mysql_db(&site.url);
}
