//! Kill anywhere, more targets (issue 22, continuing tests/kill_anywhere.rs with the same harness,
//! tests/common/kill.rs): `copy_table` MariaDB -> MariaDB, seafile-migrate to S3 (s3s-fs), and
//! druid-deep-storage with its metadata store on PostgreSQL. Each run is SIGKILLed at a random
//! moment drawn from the length of an uninterrupted run and run again; whenever a run completes,
//! the end state is checked exactly and the fixture is put back. `FERRY_KILL_POINTS` (25 here) and
//! `FERRY_KILL_SEED` replay a loop. Figures: docs/reliability.md.

use crate::common;
use crate::seafile_support;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::druid::{self as fx, Kind, Seg};
use common::kill::{self, Report};
use common::s3::S3Server;
use common::{Workspace, db};

fn finished_ok(r: &Report) {
    assert_eq!(r.last_code, 0, "the completing run failed\n{r}");
}

/// The loop's own figures, printed for docs/reliability.md.
fn print_figures(name: &str, r: &Report, extra: &str) {
    println!(
        "KILL FIGURES {name}: kills {} ended_early {} cycles {} early_failures {} seed {} run_ms {} {extra}",
        r.kills,
        r.ended_early,
        r.cycles,
        r.early_failures.len(),
        r.seed,
        r.run_length.as_millis()
    );
}

// ------------------------------------------------------------------------------------------
// 1. copy_table MariaDB -> MariaDB
// ------------------------------------------------------------------------------------------

const SQL_ROWS: usize = 60_000;

/// Count, distinct ids, and a sum of per-row MD5 prefixes.
fn mysql_digest(url: &str) -> String {
    db::mysql_exec(
        url,
        "SELECT COUNT(*), COUNT(DISTINCT id), SUM(CONV(SUBSTR(MD5(CONCAT_WS('|', id, a, b, v)), 1, 8), 16, 10)) FROM big",
    )
    .trim()
    .to_string()
}

fn sql_copy_mariadb(seed: u64, points: usize) {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let src = db::fresh_mysql_db("kill_msrc");
    let dst = db::fresh_mysql_db("kill_mdst");
    db::seed_big(&src, SQL_ROWS);
    db::mysql_exec(
        &dst,
        "CREATE TABLE big (id BIGINT PRIMARY KEY, a VARCHAR(64), b VARCHAR(64), v VARCHAR(100))",
    );
    let want = mysql_digest(&src);
    let ws = Workspace::new();
    let state = ws.join("st");
    let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lua/sql_copy_job.lua");
    let mut make = || {
        ws.ferry()
            .args([
                "run".to_string(),
                job.display().to_string(),
                "--state".into(),
                state.display().to_string(),
                "-p".into(),
                format!("src={src}"),
                "-p".into(),
                format!("dst={dst}"),
                "-p".into(),
                "workers=4".into(),
            ])
            .cmd
    };
    let check = |r: &Report| {
        finished_ok(r);
        assert_eq!(
            mysql_digest(&dst),
            want,
            "target rows differ (count, ids, checksum)\n{r}"
        );
        kill::check_journal(&state, &["copy"], r);
    };
    let reset = || {
        db::mysql_exec(&dst, "TRUNCATE big");
        let _ = std::fs::remove_dir_all(&state);
    };
    let (length, code, err) = kill::run_length(&mut make);
    assert_eq!(code, 0, "{err}");
    check(&Report::default());
    reset();
    let r = kill::kill_cycles(&mut make, length, points, seed, &mut |r| {
        check(r);
        reset();
    });
    assert!(r.early_failures.is_empty(), "{r}");
    print_figures("sql_copy_mariadb", &r, "");
    db::drop_mysql_db(&src);
    db::drop_mysql_db(&dst);
}

#[test]
fn sql_copy_table_mariadb_to_mariadb_killed_anywhere_has_every_row_once() {
    sql_copy_mariadb(kill::seed(2207), kill::points(25));
}

// ------------------------------------------------------------------------------------------
// 2. seafile-migrate, filesystem -> S3 (s3s-fs), phase all
// ------------------------------------------------------------------------------------------

fn seafile_to_s3(seed: u64, points: usize) {
    let s3 = S3Server::start();
    let ws = Workspace::new();
    let tree = seafile_support::generate(&ws, "site");
    let dest_conf = seafile_support::s3_sections(
        &s3,
        "kill",
        &format!(
            "host = {}\npath_style_request = true\nuse_v4_signature = true\naws_region = us-east-1\n",
            seafile_support::hostport(&s3)
        ),
    );
    std::fs::write(tree.dest_conf_dir.join("seafile.conf"), &dest_conf).unwrap();
    let original = seafile_support::fs_objects(&tree.seafile_data);
    let conf_path = tree.conf_dir.join("seafile.conf");
    let original_conf = std::fs::read_to_string(&conf_path).unwrap();
    let state = ws.join("st");
    let lists = ws.join("lists");
    let mut make = || {
        let mut f = ws.ferry().args([
            "run".to_string(),
            "seafile-migrate".into(),
            "--yes".into(),
            "--state".into(),
            state.display().to_string(),
            "-p".into(),
            format!("conf_dir={}", tree.conf_dir.display()),
            "-p".into(),
            format!("seafile_data={}", tree.seafile_data.display()),
            "-p".into(),
            format!("dest_conf_dir={}", tree.dest_conf_dir.display()),
            "-p".into(),
            format!("object_list={}/objs", lists.display()),
            "-p".into(),
            "objects_per_second=300".into(),
        ]);
        for k in common::s3::UNSET_ENV {
            f.cmd.env_remove(k);
        }
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_ENDPOINT_URL",
            "NO_PROXY",
            "no_proxy",
        ] {
            f.cmd.env_remove(k);
        }
        s3.apply_env(&mut f.cmd);
        f.cmd
    };
    let final_conf = RefCell::new(String::new());
    let check = |r: &Report| {
        finished_ok(r);
        for (dtype, key, bytes) in &original {
            let got = s3.read_file(&format!("kill-{dtype}"), key);
            assert!(got.as_ref() == Some(bytes), "{dtype} {key} differs\n{r}");
        }
        for dtype in ["commits", "fs", "blocks"] {
            let n = original.iter().filter(|o| o.0 == dtype).count();
            let files = s3.list_files(&format!("kill-{dtype}"));
            assert_eq!(files.len(), n, "{dtype}: nothing else in the bucket\n{r}");
        }
        // seafile.conf replaced once: the new one, and one backup holding the original.
        let conf = std::fs::read_to_string(&conf_path).unwrap();
        assert_eq!(conf, *final_conf.borrow(), "seafile.conf\n{r}");
        let others: Vec<String> = std::fs::read_dir(&tree.conf_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f != "seafile.conf")
            .collect();
        assert_eq!(others.len(), 1, "conf dir: {others:?}\n{r}");
        assert!(
            others[0].starts_with("seafile.conf.ferry-backup-"),
            "{others:?}\n{r}"
        );
        let backup = std::fs::read_to_string(tree.conf_dir.join(&others[0])).unwrap();
        assert_eq!(backup, original_conf, "the backup is not the original\n{r}");
        kill::check_journal(
            &state,
            &[
                "read-config",
                "initial-migration",
                "final-migration",
                "verify",
                "replace-conf",
            ],
            r,
        );
    };
    let reset = || {
        for dtype in ["commits", "fs", "blocks"] {
            let dir = s3.root.join(format!("kill-{dtype}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
        }
        let _ = std::fs::remove_dir_all(&state);
        let _ = std::fs::remove_dir_all(&lists);
        let _ = std::fs::remove_dir_all(&tree.conf_dir);
        std::fs::create_dir_all(&tree.conf_dir).unwrap();
        std::fs::write(&conf_path, &original_conf).unwrap();
    };
    let (length, code, err) = kill::run_length(&mut make);
    assert_eq!(code, 0, "{err}");
    *final_conf.borrow_mut() = std::fs::read_to_string(&conf_path).unwrap();
    assert_ne!(*final_conf.borrow(), original_conf);
    check(&Report::default());
    reset();
    let r = kill::kill_cycles(&mut make, length, points, seed, &mut |r| {
        check(r);
        reset();
    });
    assert!(r.early_failures.is_empty(), "{r}");
    print_figures("seafile_s3", &r, &format!("objects {}", original.len()));
}

#[test]
fn seafile_migrate_fs_to_s3_killed_anywhere_moves_every_object_once() {
    seafile_to_s3(kill::seed(2208), kill::points(25));
}

// ------------------------------------------------------------------------------------------
// 3. druid-deep-storage, direct mode: local deep storage -> S3, metadata in PostgreSQL
// ------------------------------------------------------------------------------------------

const BUCKET: &str = "druid-deep";
const BASE: &str = "segments/prod";
/// Rows sharing the first segment's load spec, as in tests/kill_anywhere.rs.
const SHARED_ROWS: u32 = 3000;
const BIG_SEGMENT: usize = 12 << 20;

fn s3_spec(dir: &str) -> String {
    format!(
        r#"{{"type":"s3_zip","bucket":"{BUCKET}","key":"{BASE}/{dir}/index.zip","S3Schema":"s3n"}}"#
    )
}

fn many_shared_rows(owner: &str) -> Vec<Seg> {
    (0..SHARED_ROWS)
        .map(|i| {
            let mut s = fx::seg(
                "many",
                1 + i % 28,
                "2024-04-01T00:00:00.000Z",
                1 + i / 28,
                None,
                true,
                Kind::Shares(owner.to_string()),
                &format!(
                    r#"{{"type":"numbered","partitionNum":{},"partitions":{}}}"#,
                    1 + i / 28,
                    2 + SHARED_ROWS / 28
                ),
                "",
            );
            s.upgraded_from = Some(owner.to_string());
            s
        })
        .collect()
}

fn pg_backup_tables(url: &str) -> Vec<String> {
    db::tsv_rows(&db::psql_exec(
        url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' \
         AND tablename LIKE 'druid_segments_backup_%' ORDER BY 1;",
    ))
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

/// Whether the run whose --log-json file is `path` was in `step` when it was killed.
fn killed_in_step(path: &Path, step: &str) -> bool {
    let events = common::json_lines(path);
    let started = events
        .iter()
        .any(|e| e["event"] == "step_started" && e["step"] == step);
    let ended = events.iter().any(|e| {
        (e["event"] == "step_finished" || e["event"] == "step_failed") && e["step"] == step
    });
    started && !ended
}

fn druid_postgres(seed: u64, points: usize) {
    if db::postgres_url_or_skip().is_none() {
        return;
    }
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let url = db::fresh_postgres_db("druid_kill_pg");
    let owner = "wiki_2016-06-27T00:00:00.000Z_2016-06-28T00:00:00.000Z_2019-05-03T21:57:15.950Z";
    let site = fx::site_sized(url.clone(), true, many_shared_rows(owner), BIG_SEGMENT);
    assert_eq!(site.segs[0].id, owner);
    let want = fx::expected(&site.segs, s3_spec);
    let originals = fx::originals(&site.segs);
    let schema_and_rows = fx::postgres_ddl(true) + &fx::insert_sql(&site.segs, true, true);
    let state = site.ws.join("st");
    let logs = site.ws.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let run_no = Cell::new(0usize);
    let log_of = |i: usize| logs.join(format!("run-{i}.jsonl"));
    let mut make = || -> Command {
        let i = run_no.get();
        run_no.set(i + 1);
        let mut f = fx::ferry_cmd(
            &site,
            &[
                "-p",
                &format!("target=s3://{BUCKET}/{BASE}"),
                "--state",
                &state.display().to_string(),
                "--log-json",
                &log_of(i).display().to_string(),
            ],
        );
        f.cmd.env_remove("AWS_CA_BUNDLE");
        s3.apply_env(&mut f.cmd);
        f.cmd
    };
    let objects: Vec<String> = {
        let mut v: Vec<String> = site
            .segs
            .iter()
            .filter(|s| matches!(s.kind, Kind::Zip(_) | Kind::Dir(_)))
            .map(|s| format!("{BASE}/{}/index.zip", s.default_dir()))
            .collect();
        v.sort();
        v
    };
    let check = |r: &Report| {
        finished_ok(r);
        let got = fx::payloads(&url);
        assert_eq!(got.len(), want.len(), "rows\n{r}");
        for (id, p) in &want {
            assert!(
                got.get(id) == Some(p),
                "payload of {id}: {:?}\nwant {p}\n{r}",
                got.get(id)
            );
        }
        assert_eq!(s3.list_files(BUCKET), objects, "objects in the bucket\n{r}");
        for s in &site.segs {
            let key = format!("{BASE}/{}/index.zip", s.default_dir());
            match &s.kind {
                Kind::Zip(data) => assert!(
                    s3.read_file(BUCKET, &key).as_deref() == Some(&data[..]),
                    "{key} differs\n{r}"
                ),
                Kind::Dir(files) => {
                    let got = fx::unzip(&s3.read_file(BUCKET, &key).unwrap());
                    let want: BTreeMap<String, Vec<u8>> = files.iter().cloned().collect();
                    assert!(got == want, "{key}: zipped files differ\n{r}");
                }
                _ => {}
            }
        }
        // One backup table, holding every original payload.
        let backups = pg_backup_tables(&url);
        assert_eq!(backups.len(), 1, "backup tables {backups:?}\n{r}");
        let n: usize = db::psql_exec(
            &url,
            &format!(
                "SELECT COUNT(*) FROM \"{}\" b JOIN druid_segments s ON s.id = b.id",
                backups[0]
            ),
        )
        .trim()
        .parse()
        .unwrap();
        assert_eq!(n, originals.len(), "backup rows\n{r}");
        kill::check_journal(
            &state,
            &[
                "copy-segments",
                "export-metadata",
                "rewrite-load-specs",
                "verify",
            ],
            r,
        );
    };
    let reset = || {
        let mut sql = String::from("DROP TABLE druid_segments;\n");
        for t in pg_backup_tables(&url) {
            sql.push_str(&format!("DROP TABLE \"{t}\";\n"));
        }
        db::psql_exec(&url, &(sql + &schema_and_rows));
        let _ = std::fs::remove_dir_all(s3.root.join(BUCKET));
        std::fs::create_dir_all(s3.root.join(BUCKET)).unwrap();
        let _ = std::fs::remove_dir_all(&state);
    };
    let (length, code, err) = kill::run_length(&mut make);
    assert_eq!(code, 0, "{err}");
    check(&Report::default());
    reset();
    let first = run_no.get();
    let r = kill::kill_cycles(&mut make, length, points, seed, &mut |r| {
        check(r);
        reset();
    });
    let in_rewrite = r
        .killed_runs
        .iter()
        .filter(|i| killed_in_step(&log_of(first + **i), "rewrite-load-specs"))
        .count();
    assert!(r.early_failures.is_empty(), "{r}");
    print_figures(
        "druid_postgres",
        &r,
        &format!("killed_in_rewrite {in_rewrite}"),
    );
    db::drop_postgres_db(&url);
}

#[test]
fn druid_direct_to_s3_metadata_on_postgres_killed_anywhere_rewrites_metadata_once() {
    druid_postgres(kill::seed(2209), kill::points(25));
}
