//! druid-deep-storage checked against what the real Druid does (apache/druid source, cited beside
//! each test): the partition numbers Druid's pushers put in paths (numbered_overwrite shard
//! specs), and that two source files never land on one key. Real MariaDB and s3s-fs.

use crate::common;

use common::db;
use common::druid::{self as fx, Kind, run, site_with};
use common::s3::S3Server;

const BUCKET: &str = "druid-deep";
const BASE: &str = "segments/prod";

/// NumberedOverwriteShardSpec stores the partition as `partitionId` (32768+), and
/// DataSegmentPusher.getDefaultStorageDir puts getPartitionNum() (= partitionId) in the path:
/// each overwrite segment gets its own `.../32768/index.zip`, never partition 0's key.
#[test]
fn numbered_overwrite_segments_keep_their_partition_id() {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let site = site_with(db::fresh_mysql_db("druid_ovw"), true, fx::overwrite_segs());
    let target = format!("target=s3://{BUCKET}/{BASE}");
    let out = run(&site, &["-p", &target], Some(&s3));
    out.code(0).stderr_has("rewrote 9 load spec(s)");
    let got = fx::payloads(&site.url);
    for s in site.segs.iter().filter(|s| s.partition >= 32768) {
        let dir = format!("wiki/{}_{}/{}/{}", s.start, s.end, s.version, s.partition);
        assert_eq!(s.default_dir(), dir);
        let key = format!("{BASE}/{dir}/index.zip");
        assert!(
            got[&s.id].contains(&format!("\"key\":\"{key}\"")),
            "{}",
            got[&s.id]
        );
        let Kind::Dir(files) = &s.kind else {
            panic!("dir segment")
        };
        let zipped = fx::unzip(&s3.read_file(BUCKET, &key).expect("object"));
        assert!(
            zipped == files.iter().cloned().collect(),
            "{key}: wrong content"
        );
    }
    // Partition 0 of the same chunk kept its own object (a zip-style segment, byte for byte).
    let p0 = &site.segs[0];
    let Kind::Zip(data) = &p0.kind else {
        panic!("zip segment")
    };
    assert_eq!(
        s3.read_file(BUCKET, &format!("{BASE}/{}/index.zip", p0.default_dir()))
            .as_deref(),
        Some(&data[..])
    );
    db::drop_mysql_db(&site.url);
}

/// Two local files whose Druid paths are one key: refused before any copy, dry run included.
#[test]
fn two_files_for_one_target_key_are_refused_before_any_copy() {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let site = site_with(
        db::fresh_mysql_db("druid_clash"),
        true,
        vec![fx::misnumbered_seg()],
    );
    let target = format!("target=s3://{BUCKET}/{BASE}");
    let want_key = format!("{}/index.zip", site.segs[1].default_dir());
    for extra in [&["--dry-run", "--state", "dry"][..], &[][..]] {
        let mut args = vec!["-p", target.as_str()];
        args.extend_from_slice(extra);
        let out = run(&site, &args, Some(&s3));
        out.code(1)
            .stderr_has(
                "1 target key(s) would receive two different segment files; nothing was copied",
            )
            .stderr_has(&want_key)
            .stderr_has(&site.segs.last().unwrap().id);
        assert!(
            s3.list_files(BUCKET).is_empty(),
            "{:?}",
            s3.list_files(BUCKET)
        );
        let before: std::collections::BTreeMap<_, _> = site
            .segs
            .iter()
            .map(|s| (s.id.clone(), s.payload.clone()))
            .collect();
        assert_eq!(fx::payloads(&site.url), before);
    }
    db::drop_mysql_db(&site.url);
}

/// What ferry streamed at level 0 before: STORED entries with data descriptors. The JVM refuses
/// it, which is why level 0 is refused now (and shows the Java check can fail).
#[test]
fn java_refuses_streamed_stored_entries() {
    if !fx::java_or_skip("java_refuses_streamed_stored_entries") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stored.zip");
    let mut zw = zip::ZipWriter::new_stream(std::fs::File::create(&path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zw.start_file("00000.smoosh", opts).unwrap();
    std::io::Write::write_all(&mut zw, &fx::bytes(9, 1000)).unwrap();
    zw.finish().unwrap();
    let err = fx::java_zip_read(&[path]).unwrap_err();
    assert!(
        err.contains("only DEFLATED entries can have EXT descriptor"),
        "{err}"
    );
}

/// Every index.zip ferry writes (the default level, 1 and 9) reads with ZipInputStream entry by
/// entry, each file's size and CRC as in the index/ directory; zip_level=0 is refused up front.
#[test]
fn every_zip_ferry_writes_reads_with_java_zip_input_stream() {
    if db::mysql_url_or_skip().is_none()
        || !fx::java_or_skip("every_zip_ferry_writes_reads_with_java_zip_input_stream")
    {
        return;
    }
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    for level in [None, Some(1), Some(9)] {
        let site = site_with(db::fresh_mysql_db("druid_java"), false, Vec::new());
        let base = format!(
            "level-{}",
            level.map(|l| l.to_string()).unwrap_or("default".into())
        );
        let target = format!("target=s3://{BUCKET}/{base}");
        let lp = level.map(|l| format!("zip_level={l}"));
        let mut args = vec!["-p", target.as_str()];
        if let Some(lp) = &lp {
            args.extend(["-p", lp.as_str()]);
        }
        run(&site, &args, Some(&s3)).code(0);
        let tmp = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        let mut want = Vec::new();
        for s in site.segs.iter() {
            let Kind::Dir(content) = &s.kind else {
                continue;
            };
            let key = format!("{base}/{}/index.zip", fx::expected_dir(&site.segs, s));
            let f = tmp.path().join(format!("{}.zip", files.len()));
            std::fs::write(&f, s3.read_file(BUCKET, &key).expect(&key)).unwrap();
            let mut sorted = content.clone();
            sorted.sort();
            for (name, data) in sorted {
                want.push(format!(
                    "{}\t{name}\t{}\t{:08x}",
                    f.display(),
                    data.len(),
                    fx::crc32(&data)
                ));
            }
            files.push(f);
        }
        assert_eq!(files.len(), 3);
        let got = fx::java_zip_read(&files).unwrap_or_else(|e| panic!("level {level:?}: {e}"));
        assert_eq!(got, want, "level {level:?}");
        db::drop_mysql_db(&site.url);
    }
    // Level 0 would stream STORED entries with data descriptors: refused before anything runs.
    let site = site_with(db::fresh_mysql_db("druid_java0"), false, Vec::new());
    let out = run(
        &site,
        &[
            "-p",
            &format!("target=s3://{BUCKET}/level-0"),
            "-p",
            "zip_level=0",
        ],
        Some(&s3),
    );
    out.code(2)
        .stderr_has("zip_level=0")
        .stderr_has("ZipInputStream");
    assert!(
        s3.list_files(BUCKET)
            .iter()
            .all(|k| !k.starts_with("level-0/"))
    );
    db::drop_mysql_db(&site.url);
}

/// Runs a migration to s3s-fs with these extra lines in common.runtime.properties; returns the
/// requests the server saw and the run's stderr.
fn migrate_with_conf(name: &str, props: &str) -> (Vec<common::s3::SeenRequest>, String) {
    migrate_with(name, props, |_| {})
}

/// [`migrate_with_conf`], with `setup` applied to the S3 server first.
fn migrate_with(
    name: &str,
    props: &str,
    setup: impl FnOnce(&S3Server),
) -> (Vec<common::s3::SeenRequest>, String) {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    setup(&s3);
    let site = site_with(db::fresh_mysql_db(name), true, Vec::new());
    let mut conf = std::fs::read_to_string(&site.conf).unwrap();
    conf.push_str(props);
    std::fs::write(&site.conf, conf).unwrap();
    let out = run(
        &site,
        &["-p", &format!("target=s3://{BUCKET}/{BASE}")],
        Some(&s3),
    );
    out.code(0).stderr_has("rewrote 7 load spec(s)");
    db::drop_mysql_db(&site.url);
    (s3.requests_seen(), out.stderr.clone())
}

fn is_put_object(r: &common::s3::SeenRequest) -> bool {
    r.method == "PUT" && !r.uri.contains("partNumber=")
}
fn is_create_multipart(r: &common::s3::SeenRequest) -> bool {
    r.method == "POST"
        && (r.uri.ends_with("?uploads")
            || r.uri.contains("?uploads&")
            || r.uri.ends_with("?uploads="))
}
fn is_upload_part(r: &common::s3::SeenRequest) -> bool {
    r.method == "PUT" && r.uri.contains("partNumber=")
}

/// Asserts `name: value` on every request `which` selects (at least one), and that the SigV4
/// signature covers the header (S3 refuses unsigned x-amz-* headers).
fn assert_header(
    seen: &[common::s3::SeenRequest],
    which: fn(&common::s3::SeenRequest) -> bool,
    what: &str,
    name: &str,
    value: &str,
) {
    let picked: Vec<_> = seen.iter().filter(|r| which(r)).collect();
    assert!(!picked.is_empty(), "no {what} request");
    for r in picked {
        assert_eq!(
            r.header(name),
            Some(value),
            "{what} {} {}: {name}",
            r.method,
            r.uri
        );
        assert!(
            r.signed_headers().iter().any(|h| h == name),
            "{what} {}: {name} not signed ({:?})",
            r.uri,
            r.signed_headers()
        );
    }
}

fn is_get_bucket_acl(r: &common::s3::SeenRequest) -> bool {
    r.method == "GET" && (r.uri.ends_with("?acl") || r.uri.contains("?acl&"))
}

const GRANT_HEADERS: &[&str] = &[
    "x-amz-grant-full-control",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
];

/// druid.storage.sse.type=s3 (S3ServerSideEncryption: AES256) and the ACL as Druid's pusher sends
/// it: S3Utils.uploadFileIfPossible puts `grantFullControlToBucketOwner(bucket)` on the
/// PutObjectRequest: GetBucketAcl, plus a FULL_CONTROL grant for the owner's canonical id
/// (AccessControlList.grantAllPermissions appends to the grant list, duplicates kept); the AWS
/// SDK v1 (AmazonS3Client.addAclHeaders) sends one x-amz-grant-<permission> header per
/// permission in Permission.values() order, grantees `id="..."`, `uri="..."`,
/// `emailAddress="..."` joined by ", ". On PutObject and CreateMultipartUpload only, signed; the
/// bucket's ACL read once, before the first upload.
#[test]
fn s3_uploads_carry_sse_s3_and_the_bucket_acl_plus_owner_full_control() {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let other = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be";
    let log = "http://acs.amazonaws.com/groups/s3/LogDelivery";
    let (seen, _) = migrate_with("druid_sse_s3", "druid.storage.sse.type=s3\n", |s3| {
        s3.add_bucket_grants(&[
            ("id", other, "FULL_CONTROL"),
            ("uri", log, "WRITE"),
            ("emailAddress", "ops@example.com", "READ"),
            ("uri", log, "READ_ACP"),
        ])
    });
    assert!(
        seen.iter().any(is_upload_part),
        "the big segment is uploaded in parts"
    );
    let owner = common::s3::BUCKET_OWNER_ID;
    let acl_reads: Vec<_> = seen.iter().filter(|r| is_get_bucket_acl(r)).collect();
    // Read when the target store opens (the check before the shutdown, the copy, verify), not
    // per object as Druid does per push.
    assert!(
        (1..=3).contains(&acl_reads.len()),
        "GetBucketAcl requests: {acl_reads:?}"
    );
    assert!(acl_reads.iter().all(|r| r.status == 200));
    let uploads = seen
        .iter()
        .filter(|r| is_put_object(r) || is_create_multipart(r))
        .count();
    assert!(uploads >= 6, "{uploads} uploads");
    let first_acl = seen.iter().position(is_get_bucket_acl).unwrap();
    let first_upload = seen
        .iter()
        .position(|r| is_put_object(r) || is_create_multipart(r))
        .unwrap();
    assert!(first_acl < first_upload, "GetBucketAcl after an upload");
    let full = format!(r#"id="{owner}", id="{other}", id="{owner}""#);
    let logq = format!(r#"uri="{log}""#);
    for (which, what) in [
        (is_put_object as fn(&_) -> bool, "PutObject"),
        (is_create_multipart, "CreateMultipartUpload"),
    ] {
        assert_header(&seen, which, what, "x-amz-server-side-encryption", "AES256");
        assert_header(&seen, which, what, "x-amz-grant-full-control", &full);
        assert_header(&seen, which, what, "x-amz-grant-write", &logq);
        assert_header(&seen, which, what, "x-amz-grant-read-acp", &logq);
        assert_header(
            &seen,
            which,
            what,
            "x-amz-grant-read",
            r#"emailAddress="ops@example.com""#,
        );
        for r in seen.iter().filter(|r| which(r)) {
            assert_eq!(r.header("x-amz-grant-write-acp"), None, "{}", r.uri);
        }
    }
    // Nothing else carries an ACL: GET, HEAD, LIST, UploadPart, CompleteMultipartUpload.
    let others: Vec<_> = seen
        .iter()
        .filter(|r| !is_put_object(r) && !is_create_multipart(r))
        .collect();
    assert!(
        others
            .iter()
            .any(|r| r.method == "GET" && r.uri.contains("index.zip"))
    );
    assert!(others.iter().any(|r| r.method == "HEAD"));
    assert!(others.iter().any(|r| r.uri.contains("list-type=2")));
    for r in others {
        for h in GRANT_HEADERS.iter().chain(&["x-amz-acl"]) {
            assert_eq!(r.header(h), None, "{} {} carries {h}", r.method, r.uri);
        }
    }
    assert!(seen.iter().all(|r| r.header("x-amz-acl").is_none()));
}

/// Credentials without s3:GetBucketAcl: Druid's pusher would fail at its first push
/// (grantFullControlToBucketOwner), so ferry fails before copying anything and says what to do.
#[test]
fn a_refused_get_bucket_acl_stops_the_run_before_any_copy() {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    s3.refuse_get_bucket_acl();
    let site = site_with(db::fresh_mysql_db("druid_acl_denied"), true, Vec::new());
    let out = run(
        &site,
        &["-p", &format!("target=s3://{BUCKET}/{BASE}")],
        Some(&s3),
    );
    assert_ne!(out.code, 0, "{}", out.stderr);
    out.stderr_has("GetBucketAcl")
        .stderr_has("403 AccessDenied")
        .stderr_has("s3:GetBucketAcl")
        .stderr_has("druid.storage.disableAcl=true")
        .stderr_has("nothing was copied");
    let seen = s3.requests_seen();
    assert!(seen.iter().any(is_get_bucket_acl));
    assert!(
        seen.iter().all(|r| r.method != "PUT" && r.method != "POST"),
        "{:?}",
        seen.iter()
            .map(|r| format!("{} {}", r.method, r.uri))
            .collect::<Vec<_>>()
    );
    assert!(s3.list_files(BUCKET).is_empty());
    assert_eq!(fx::payloads(&site.url), fx::originals(&site.segs));
    db::drop_mysql_db(&site.url);
}

/// kms with a key id (KmsServerSideEncryption), and druid.storage.disableAcl=true: no ACL at all.
#[test]
fn s3_uploads_carry_sse_kms_key_and_no_acl_when_disabled() {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let (seen, _) = migrate_with_conf(
        "druid_sse_kms",
        &format!(
            "druid.storage.sse.type=kms\ndruid.storage.sse.kms.keyId={key}\ndruid.storage.disableAcl=true\n"
        ),
    );
    for (which, what) in [
        (is_put_object as fn(&_) -> bool, "PutObject"),
        (is_create_multipart, "CreateMultipartUpload"),
    ] {
        assert_header(
            &seen,
            which,
            what,
            "x-amz-server-side-encryption",
            "aws:kms",
        );
        assert_header(
            &seen,
            which,
            what,
            "x-amz-server-side-encryption-aws-kms-key-id",
            key,
        );
    }
    assert!(
        seen.iter().all(|r| GRANT_HEADERS
            .iter()
            .chain(&["x-amz-acl"])
            .all(|h| r.header(h).is_none())),
        "an ACL was sent with disableAcl=true"
    );
    assert!(
        !seen.iter().any(is_get_bucket_acl),
        "GetBucketAcl with disableAcl=true"
    );
}

/// custom = SSE-C (CustomServerSideEncryption): the key on every put, every part, and every read
/// (HEAD and GET), as ServerSideEncryptingAmazonS3 decorates them; the key never in the output.
#[test]
fn s3_uploads_and_reads_carry_the_sse_c_key() {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    use base64::Engine;
    let raw: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(3))
        .collect();
    let key = base64::engine::general_purpose::STANDARD.encode(&raw);
    let md5 = {
        use md5::Digest;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&raw))
    };
    let (seen, stderr) = migrate_with_conf(
        "druid_sse_c",
        &format!(
            "druid.storage.sse.type=custom\ndruid.storage.sse.custom.base64EncodedKey={key}\n"
        ),
    );
    assert!(!stderr.contains(&key), "the SSE-C key was printed");
    let heads = |r: &common::s3::SeenRequest| r.method == "HEAD" && !r.uri.ends_with('/');
    let gets = |r: &common::s3::SeenRequest| r.method == "GET" && r.uri.contains("/index.zip");
    for (which, what) in [
        (is_put_object as fn(&_) -> bool, "PutObject"),
        (is_create_multipart, "CreateMultipartUpload"),
        (is_upload_part, "UploadPart"),
        (heads, "HeadObject"),
        (gets, "GetObject (verify reads a sample back)"),
    ] {
        assert_header(
            &seen,
            which,
            what,
            "x-amz-server-side-encryption-customer-algorithm",
            "AES256",
        );
        assert_header(
            &seen,
            which,
            what,
            "x-amz-server-side-encryption-customer-key",
            &key,
        );
        assert_header(
            &seen,
            which,
            what,
            "x-amz-server-side-encryption-customer-key-md5",
            &md5,
        );
    }
    let owner = common::s3::BUCKET_OWNER_ID;
    assert_header(
        &seen,
        is_put_object,
        "PutObject",
        "x-amz-grant-full-control",
        &format!(r#"id="{owner}", id="{owner}""#),
    );
}

fn coordinator(
    site: &fx::Site,
    datasources: &[&str],
    empty_polls: u64,
    view: fx::View,
) -> fx::Coordinator {
    let _ = site;
    fx::Coordinator::start_with(fx::CoordinatorSpec {
        datasources: datasources.iter().map(|s| s.to_string()).collect(),
        start_pct: 100.0,
        steps: 1,
        empty_polls,
        view: Some(view),
    })
}

/// The Coordinator check passes only when loadstatus lists every rewritten data source at 100%
/// and the metadata API (MetadataResource.getUsedSegmentsInDataSource) shows every used segment
/// with its new loadSpec; an empty `{}` answer waits; a uploaded object that Druid's streaming
/// unzip would refuse fails verify even when its size is right.
#[test]
fn coordinator_check_needs_every_datasource_the_new_load_specs_and_readable_objects() {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let site = site_with(db::fresh_mysql_db("druid_coord"), true, Vec::new());
    let target = format!("target=s3://{BUCKET}/{BASE}");
    let originals: Vec<String> = fx::used_payloads(&site.url);
    let verify = |coord: &fx::Coordinator, state: &str| {
        let c = format!("coordinator_url={}", coord.url());
        let st = format!("st-{state}");
        run(
            &site,
            &[
                "-p",
                &target,
                "-p",
                &c,
                "-p",
                "poll_interval=0.05",
                "-p",
                "load_timeout=1.5",
                "--state",
                &st,
            ],
            Some(&s3),
        )
    };
    // A data source missing from loadstatus (its segments never loaded anywhere): not success.
    let partial = coordinator(
        &site,
        &["wiki", "logs"],
        0,
        fx::View::Live(site.url.clone()),
    );
    verify(&partial, "a")
        .code(1)
        .stderr_has("rewrote 7 load spec(s)")
        .stderr_has("big not listed");
    // Every data source at 100%, but the Coordinator's metadata snapshot still has the old local
    // loadSpecs (not restarted; Historicals serving their local cache): not success.
    let stale = coordinator(
        &site,
        &["wiki", "logs", "big"],
        0,
        fx::View::Fixed(originals),
    );
    verify(&stale, "b")
        .code(1)
        .stderr_has("metadata view is stale")
        .stderr_has("segment(s) with the old loadSpec");
    // `{}` (before the Coordinator's first metadata poll) waits; then everything checks out.
    let fresh = coordinator(
        &site,
        &["wiki", "logs", "big"],
        3,
        fx::View::Live(site.url.clone()),
    );
    verify(&fresh, "c")
        .code(0)
        .stderr_has("the Coordinator lists no data source yet")
        .stderr_has("read back ")
        .stderr_has("the Coordinator lists 3 data source(s) fully loaded");
    assert!(fresh.polls() > 3, "polled {} times", fresh.polls());
    let meta = fresh
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/metadata/datasources/"))
        .count();
    assert!(meta >= 3, "{meta} metadata requests");

    // Every object ferry accepted reads with the JVM's ZipInputStream, as Druid's S3 puller
    // (CompressionUtils.unzip(InputStream, File)) reads it.
    let java = fx::java_or_skip(
        "coordinator_check_needs_every_datasource_the_new_load_specs_and_readable_objects (Java part)",
    );
    let objects: Vec<String> = s3
        .list_files(BUCKET)
        .into_iter()
        .filter(|k| k.starts_with(&format!("{BASE}/")) && k.ends_with("/index.zip"))
        .collect();
    // 7 local rows, one of which shares another's files.
    assert_eq!(objects.len(), 6, "{objects:?}");
    if java {
        let files: Vec<_> = objects.iter().map(|k| s3.object_path(BUCKET, k)).collect();
        let lines = fx::java_zip_read(&files).unwrap_or_else(|e| panic!("Java refuses: {e}"));
        assert_eq!(lines.len(), 6 * 3, "{lines:?}");
    }

    // An object damaged in the bucket (same size, one byte changed): HEAD still matches, the
    // streaming read (ZipInputStream's CRC check) does not.
    let big = site.segs.iter().find(|s| s.ds == "big").unwrap();
    let damaged = format!("{BASE}/{}/index.zip", big.default_dir());
    let path = s3.object_path(BUCKET, &damaged);
    let mut data = std::fs::read(&path).unwrap();
    let at = data.len() / 2;
    data[at] ^= 0x01;
    std::fs::write(&path, &data).unwrap();
    let out = verify(&fresh, "d");
    out.code(1)
        .stderr_has("is not a zip Druid can read")
        .stderr_has(&damaged);
    assert_eq!(
        out.stderr.matches("is not a zip Druid can read").count(),
        1,
        "{}",
        out.stderr
    );
    // The JVM agrees object by object: it refuses exactly the object ferry refused (with a
    // java.util.zip.ZipException: a bad CRC or a broken deflate stream) and reads the others.
    if java {
        for key in &objects {
            let got = fx::java_zip_read(&[s3.object_path(BUCKET, key)]);
            if key == &damaged {
                let err = got.expect_err("Java read the damaged object");
                assert!(err.contains("java.util.zip.ZipException"), "{err}");
            } else {
                got.unwrap_or_else(|e| panic!("Java refuses {key}, which ferry accepted: {e}"));
            }
        }
    }
    db::drop_mysql_db(&site.url);
}
