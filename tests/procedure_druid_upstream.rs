//! druid-deep-storage checked against what the real Druid does (apache/druid source, cited beside
//! each test): the partition numbers Druid's pushers put in paths (numbered_overwrite shard
//! specs), and that two source files never land on one key. Real MariaDB and s3s-fs.

mod common;

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
