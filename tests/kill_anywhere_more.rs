//! Kill anywhere, more targets (issue 22, continuing tests/kill_anywhere.rs with the same harness,
//! tests/common/kill.rs): `copy_table` MariaDB -> MariaDB, seafile-migrate to S3 (s3s-fs), and
//! druid-deep-storage with its metadata store on PostgreSQL. Each run is SIGKILLed at a random
//! moment drawn from the length of an uninterrupted run and run again; whenever a run completes,
//! the end state is checked exactly and the fixture is put back. `FERRY_KILL_POINTS` (25 here) and
//! `FERRY_KILL_SEED` replay a loop. Figures: docs/reliability.md.

use crate::common;
use crate::kill_anywhere::{self, MetaDb};
use crate::seafile_support;

use std::cell::RefCell;
use std::path::Path;

use common::kill::{self, Report};
use common::s3::S3Server;
use common::{Workspace, db};

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
        r.finished_ok();
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
    r.print_figures("sql_copy_mariadb", "");
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
        r.finished_ok();
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
    r.print_figures("seafile_s3", &format!("objects {}", original.len()));
}

#[test]
fn seafile_migrate_fs_to_s3_killed_anywhere_moves_every_object_once() {
    seafile_to_s3(kill::seed(2208), kill::points(25));
}

// ------------------------------------------------------------------------------------------
// 3. druid-deep-storage, direct mode: local deep storage -> S3, metadata in PostgreSQL
// ------------------------------------------------------------------------------------------

#[test]
fn druid_direct_to_s3_metadata_on_postgres_killed_anywhere_rewrites_metadata_once() {
    // The same loop as tests/kill_anywhere.rs, with the metadata store on PostgreSQL.
    kill_anywhere::druid(
        kill::seed(2209),
        kill::points(25),
        MetaDb::Postgres,
        "druid_postgres",
    );
}
