//! druid-deep-storage's `csv` mode (Derby sites, or a move to another metadata store): it reads
//! export-metadata's CSV (classic 9 columns, or the post-#19698 form), writes rewritten CSV plus
//! import SQL that the real `mariadb` and `psql` clients load, or imports with `import_url`.
//! Rows the export already rewrote (`export-metadata -b/-k`) are HEAD-checked, and the import
//! SQL matches the target table (no used_status_last_updated for tables older than Druid 28).

use crate::common;

use common::db;
use common::druid::{self as fx, Kind, Seg, run, site};
use common::s3::S3Server;

const BUCKET: &str = "druid-deep";
const BASE: &str = "segments/prod";

fn s3_spec(dir: &str) -> String {
    format!(
        r#"{{"type":"s3_zip","bucket":"{BUCKET}","key":"{BASE}/{dir}/index.zip","S3Schema":"s3n"}}"#
    )
}

/// export-metadata's CSV of the rows: classic (9 columns, payload quoted) or master (canonical
/// columns, RFC 4180 quoting, NULL as an empty unquoted field).
fn export_csv(segs: &[Seg], master: bool) -> String {
    let quote = |v: &str| {
        if v.is_empty() {
            "\"\"".to_string()
        } else if v.contains([',', '"', '\n', '\r']) || v.starts_with(' ') || v.ends_with(' ') {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_string()
        }
    };
    let mut out = String::new();
    for s in segs {
        let mut f = vec![
            s.id.clone(),
            s.ds.clone(),
            s.created.clone(),
            s.start.clone(),
            s.end.clone(),
            (s.partitioned as u8).to_string(),
            s.version.clone(),
            (s.used as u8).to_string(),
            format!("\"{}\"", s.payload.replace('"', "\"\"")),
        ];
        if master {
            f = f
                .into_iter()
                .enumerate()
                .map(|(i, v)| if i == 8 { v } else { quote(&v) })
                .collect();
            f.push(quote(
                s.used_status_last_updated
                    .as_deref()
                    .unwrap_or("2024-01-25T16:06:44.196Z"),
            ));
            f.push(s.upgraded_from.as_deref().map(quote).unwrap_or_default());
        }
        out.push_str(&f.join(","));
        out.push('\n');
    }
    out
}

#[test]
fn csv_mode_imports_into_mariadb_and_postgres_like_direct_mode() {
    if db::mysql_url_or_skip().is_none() || db::postgres_url_or_skip().is_none() {
        return;
    }
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let target = format!("target=s3://{BUCKET}/{BASE}");
    // Direct mode on MariaDB gives the reference rows.
    let direct = site(db::fresh_mysql_db("druid_ref"), true);
    run(&direct, &["-p", &target], Some(&s3)).code(0);
    let want_payloads = fx::payloads(&direct.url);
    let want_cols = fx::other_columns(&direct.url, true);

    // A Derby site: no reachable metadata store, only export-metadata's CSV (master form).
    let ws = &direct.ws;
    std::fs::create_dir_all(ws.join("export")).unwrap();
    std::fs::write(
        ws.join("export/druid_segments.csv"),
        export_csv(&direct.segs, true),
    )
    .unwrap();
    let derby_conf = ws.write(
        "derby/common.runtime.properties",
        &format!(
            "druid.metadata.storage.type=derby\ndruid.metadata.storage.connector.connectURI=jdbc:derby://localhost:1527/var/druid/metadata.db;create=true\n\
             druid.storage.type=local\ndruid.storage.storageDirectory={}\n",
            fx::storage_root(ws.path()).display()
        ),
    );
    let conf = format!("druid_conf={}", derby_conf.display());
    let csv_run = |state: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "druid-deep-storage",
            "--yes",
            "--state",
            state,
            "-p",
            &conf,
            "-p",
            &target,
            "-p",
            "mode=csv",
            "-p",
            "export_dir=export",
            "-p",
            "csv_columns=id,dataSource,created_date,start,end,partitioned,version,used,payload,used_status_last_updated,upgraded_from_segment_id",
        ];
        args.extend_from_slice(extra);
        let mut f = ws.ferry().args(args);
        f.cmd.env_remove("AWS_CA_BUNDLE");
        s3.apply_env(&mut f.cmd);
        f.run()
    };
    // Without import_url ferry prints the commands; the objects are already there (same target).
    let out = csv_run("csv1", &[]);
    out.code(0)
        .stderr_has("import-mysql.sql")
        .stderr_has("import-postgresql.sql")
        .stderr_has("3 already there");
    let out_dir = ws.join("csv1/metadata");
    let mysql_sql = std::fs::read_to_string(out_dir.join("import-mysql.sql")).unwrap();
    assert!(mysql_sql.contains("ESCAPED BY ''"), "{mysql_sql}");

    // The generated SQL imports into MariaDB with the mysql client ...
    let maria = db::fresh_mysql_db("druid_csv");
    db::mysql_exec(&maria, &fx::mysql_ddl(true));
    db::try_mysql_exec_with(&maria, &mysql_sql, &["--local-infile=1"]).unwrap();
    assert_eq!(fx::payloads(&maria), want_payloads);
    assert_eq!(fx::other_columns(&maria, true), want_cols);

    // ... and into PostgreSQL with psql.
    let pg = db::fresh_postgres_db("druid_csv");
    db::psql_exec(&pg, &fx::postgres_ddl(true));
    db::psql_exec(
        &pg,
        &std::fs::read_to_string(out_dir.join("import-postgresql.sql")).unwrap(),
    );
    assert_eq!(fx::payloads(&pg), want_payloads);
    assert_eq!(fx::other_columns(&pg, true), want_cols);

    // import_url: ferry imports itself (into PostgreSQL), and a second run finds the rows there.
    let pg2 = db::fresh_postgres_db("druid_csv2");
    db::psql_exec(&pg2, &fx::postgres_ddl(true));
    let import = format!("import_url={pg2}");
    csv_run("csv2", &["-p", &import])
        .code(0)
        .stderr_has("imported 9 segment row(s)");
    assert_eq!(fx::payloads(&pg2), want_payloads);
    assert_eq!(fx::other_columns(&pg2, true), want_cols);
    csv_run("csv3", &["-p", &import])
        .code(0)
        .stderr_has("imported 0 segment row(s)")
        .stderr_has("9 were already there");

    // A classic 9-column export into a Druid 28+ table: used_status_last_updated is filled with
    // the migration time (the column is NOT NULL), never left empty.
    std::fs::write(
        ws.join("export/druid_segments.csv"),
        export_csv(&direct.segs, false),
    )
    .unwrap();
    let pg3 = db::fresh_postgres_db("druid_csv3");
    db::psql_exec(&pg3, &fx::postgres_ddl(true));
    let mut f = ws.ferry().args([
        "run",
        "druid-deep-storage",
        "--yes",
        "--state",
        "csv4",
        "-p",
        &conf,
        "-p",
        &target,
        "-p",
        "mode=csv",
        "-p",
        "export_dir=export",
    ]);
    f.cmd.env_remove("AWS_CA_BUNDLE");
    s3.apply_env(&mut f.cmd);
    f.run().code(0);
    db::psql_exec(
        &pg3,
        &std::fs::read_to_string(ws.join("csv4/metadata/import-postgresql.sql")).unwrap(),
    );
    assert_eq!(fx::payloads(&pg3), want_payloads);
    let filled = db::tsv_rows(&db::psql_exec(
        &pg3,
        "SELECT DISTINCT used_status_last_updated FROM druid_segments;",
    ));
    assert_eq!(filled.len(), 1);
    assert!(
        filled[0][0].starts_with("2026-") || filled[0][0].starts_with("20"),
        "{filled:?}"
    );
    assert!(filled[0][0].ends_with(".000Z"), "{filled:?}");

    db::drop_mysql_db(&maria);
    for u in [&pg, &pg2, &pg3] {
        db::drop_postgres_db(u);
    }
    db::drop_mysql_db(&direct.url);
}

/// A Derby site: the deep storage and a Derby common.runtime.properties (no metadata store ferry
/// can reach), with export-metadata's CSV of `segs` in `export/`.
fn derby_site(ws: &common::Workspace, segs: &[Seg], master: bool) -> String {
    std::fs::create_dir_all(ws.join("export")).unwrap();
    std::fs::write(
        ws.join("export/druid_segments.csv"),
        export_csv(segs, master),
    )
    .unwrap();
    let conf = ws.write(
        "derby/common.runtime.properties",
        &format!(
            "druid.metadata.storage.type=derby\ndruid.metadata.storage.connector.connectURI=jdbc:derby://localhost:1527/var/druid/metadata.db;create=true\n\
             druid.storage.type=local\ndruid.storage.storageDirectory={}\n",
            fx::storage_root(ws.path()).display()
        ),
    );
    format!("druid_conf={}", conf.display())
}

fn csv_run(
    ws: &common::Workspace,
    s3: &S3Server,
    conf: &str,
    state: &str,
    extra: &[&str],
) -> common::Output {
    let target = format!("target=s3://{BUCKET}/{BASE}");
    let mut args = vec![
        "run",
        "druid-deep-storage",
        "--yes",
        "--state",
        state,
        "-p",
        conf,
        "-p",
        &target,
        "-p",
        "mode=csv",
        "-p",
        "export_dir=export",
    ];
    args.extend_from_slice(extra);
    let mut f = ws.ferry().args(args);
    s3.apply_env(&mut f.cmd);
    f.run()
}

/// Every row's payload once migrated to S3 (local rows point at their index.zip).
fn migrated(segs: &[Seg]) -> std::collections::BTreeMap<String, String> {
    segs.iter()
        .map(|s| {
            let p = if s.is_local() {
                s.payload
                    .replace(&s.spec, &s3_spec(&fx::expected_dir(segs, s)))
            } else {
                s.payload.clone()
            };
            (s.id.clone(), p)
        })
        .collect()
}

/// export-metadata run with -b/-k (as the vendor document says) already rewrote some rows to the
/// new bucket: ferry copies nothing for them but HEAD-checks their objects, warns, and stops
/// before any change when one is missing.
#[test]
fn csv_rows_already_rewritten_by_export_metadata_are_head_checked() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let ws = common::Workspace::new();
    let mut segs = fx::build(&fx::storage_root(ws.path()));
    let mut rewritten = Vec::new();
    for i in [0usize, 7] {
        assert!(matches!(segs[i].kind, Kind::Zip(_)));
        let dir = segs[i].default_dir();
        segs[i].payload = segs[i].payload.replace(&segs[i].spec, &s3_spec(&dir));
        rewritten.push((format!("{BASE}/{dir}/index.zip"), segs[i].clone()));
    }
    let Kind::Zip(data0) = &rewritten[0].1.kind else {
        unreachable!()
    };
    s3.put_file(BUCKET, &rewritten[0].0, data0);
    let conf = derby_site(&ws, &segs, true);
    let cols = "csv_columns=id,dataSource,created_date,start,end,partitioned,version,used,payload,used_status_last_updated,upgraded_from_segment_id";
    let out = csv_run(&ws, &s3, &conf, "csv1", &["-p", cols]);
    out.code(1)
        .stderr_has("2 row(s) of the export already point into")
        .stderr_has("1 object(s) named by already-rewritten rows are missing")
        .stderr_has(&rewritten[1].0)
        .stderr_has(&rewritten[1].1.id);
    assert_eq!(
        s3.list_files(BUCKET),
        vec![rewritten[0].0.clone()],
        "copied before the check"
    );
    assert!(!ws.join("csv1/metadata/druid_segments.csv").exists());

    let Kind::Zip(data1) = &rewritten[1].1.kind else {
        unreachable!()
    };
    s3.put_file(BUCKET, &rewritten[1].0, data1);
    let out = csv_run(&ws, &s3, &conf, "csv2", &["-p", cols]);
    out.code(0)
        .stderr_has("checked their 2 object(s) with HEAD");
    let heads = s3
        .requests_seen()
        .into_iter()
        .filter(|r| r.method == "HEAD" && r.uri.replace("%3A", ":").ends_with(&rewritten[1].0))
        .count();
    assert!(heads >= 2, "{heads} HEAD requests for {}", rewritten[1].0);
}

/// The target table predates Druid 28 (no used_status_last_updated): with target_columns, or
/// import_url's table, the import SQL leaves the column out, and the real clients load it.
#[test]
fn csv_import_sql_matches_a_target_table_older_than_druid_28() {
    if db::mysql_url_or_skip().is_none() || db::postgres_url_or_skip().is_none() {
        return;
    }
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let ws = common::Workspace::new();
    let segs = fx::build(&fx::storage_root(ws.path()));
    let conf = derby_site(&ws, &segs, false);
    let want = migrated(&segs);
    let out = csv_run(
        &ws,
        &s3,
        &conf,
        "csv1",
        &[
            "-p",
            "target_columns=id,dataSource,created_date,start,end,partitioned,version,used,payload",
        ],
    );
    out.code(0).stderr_has("predates used_status_last_updated");
    let dir = ws.join("csv1/metadata");
    let maria = db::fresh_mysql_db("druid_old");
    db::mysql_exec(&maria, &fx::mysql_ddl(false));
    let sql = std::fs::read_to_string(dir.join("import-mysql.sql")).unwrap();
    assert!(!sql.contains("used_status_last_updated"), "{sql}");
    db::try_mysql_exec_with(&maria, &sql, &["--local-infile=1"]).unwrap();
    assert_eq!(fx::payloads(&maria), want);
    let pg = db::fresh_postgres_db("druid_old");
    db::psql_exec(&pg, &fx::postgres_ddl(false));
    db::psql_exec(
        &pg,
        &std::fs::read_to_string(dir.join("import-postgresql.sql")).unwrap(),
    );
    assert_eq!(fx::payloads(&pg), want);

    // import_url names an old table: ferry imports, and its files fit that table too.
    let pg2 = db::fresh_postgres_db("druid_old2");
    db::psql_exec(&pg2, &fx::postgres_ddl(false));
    let import = format!("import_url={pg2}");
    csv_run(&ws, &s3, &conf, "csv2", &["-p", &import])
        .code(0)
        .stderr_has("imported 9 segment row(s)");
    assert_eq!(fx::payloads(&pg2), want);
    let pg3 = db::fresh_postgres_db("druid_old3");
    db::psql_exec(&pg3, &fx::postgres_ddl(false));
    db::psql_exec(
        &pg3,
        &std::fs::read_to_string(ws.join("csv2/metadata/import-postgresql.sql")).unwrap(),
    );
    assert_eq!(fx::payloads(&pg3), want);
    db::drop_mysql_db(&maria);
    for u in [&pg, &pg2, &pg3] {
        db::drop_postgres_db(u);
    }
}
