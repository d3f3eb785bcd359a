//! copy_table's COPY FROM STDIN path from MariaDB to PostgreSQL (the servers from
//! tests/setup/mariadb.sh and postgres.sh): every column type arrives as the INSERT path writes
//! it, a duplicate key in the middle fails the copy without a half-written batch and resumes
//! after the fix, ignore and replace keep INSERT ... ON CONFLICT, a column type COPY does not
//! encode keeps INSERTs, a dry run writes nothing.

use crate::common;

use crate::sql_load_data::TYPES as MY_TYPES;
use common::{Workspace, db};

const JOB: &str = r#"
local p = ferry.params{
  {name = "src", type = "string", required = true, secret = true, doc = "source database URL"},
  {name = "dst", type = "string", required = true, secret = true, doc = "target database URL"},
  {name = "load", type = "string", default = "auto", doc = "auto | insert | copy"},
  {name = "on_conflict", type = "string", default = "error", doc = "error | ignore | replace"},
  {name = "batch", type = "integer", default = 3, doc = "rows per batch"},
  {name = "workers", type = "integer", default = 2, doc = "workers"},
  {name = "ranges", type = "integer", doc = "key ranges"},
  {name = "verify", type = "string", default = "count", doc = "count | checksum | none"},
}
local src = ferry.sql.connect(p.src)
local dst = ferry.sql.connect(p.dst)
local report = ferry.step("copy", "Copy t", function()
  return ferry.sql.copy_table(src, dst, {table = "t", batch = p.batch, workers = p.workers,
    ranges = p.ranges, load = p.load, on_conflict = p.on_conflict, verify = p.verify})
end)
print(ferry.json.encode(report))
"#;

const PG_TYPES: &str = "CREATE TYPE ab AS ENUM ('a', 'b c');
CREATE TABLE t (
  id BIGINT PRIMARY KEY,
  ti SMALLINT, ub NUMERIC(20,0), de NUMERIC(30,10), f DOUBLE PRECISION, fl REAL,
  c CHAR(5), vc VARCHAR(100), tx TEXT, vb BYTEA, bl BYTEA,
  d DATE, dt TIMESTAMP(6), ts TIMESTAMP(3), tm TIME(6), y INTEGER,
  j JSONB, e ab, bo BOOLEAN
)";

/// NULLs, the bytes the text COPY format reads as structure, text that looks like its escapes,
/// extreme numbers, fractional times, 4-byte UTF-8 (values PostgreSQL can hold: no NUL in text,
/// times within a day).
const ROWS: &str = r#"INSERT INTO t VALUES
 (1, -128, 18446744073709551615, -12345678901234567890.0123456789, 0.1, 3.25, 'ab', 'plain', 'text', X'00090A5C0D0AFF4E', X'5C4E', '2024-02-29', '2024-02-29 23:59:59.123456', '2030-01-19 03:14:07.999', '23:59:59.999999', 2155, '{"a": [1, "x\\ty"], "b": null}', 'b c', 1),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 0, 0, 0, -0.0, 1e-38, '', '', '', X'', X'', '1000-01-01', '1000-01-01 00:00:00', '1999-01-01 00:00:01', '00:00:00', 1901, '[]', 'a', 0),
 (4, 127, 9223372036854775808, 99999999999999999999.9999999999, 1.7976931348623157e308, -3.4e38, 'NULL', '\\N', 'N', X'5C', X'4E554C4C', '9999-12-31', '9999-12-31 23:59:59.999999', '2001-02-03 04:05:06.5', '12:00:00.5', 2000, '"\\\\N"', 'a', 1),
 (5, 1, 1, 0.0000000001, 2.5e-300, 1.5, 'tab	', 'new
line', 'back\\slash \\t \\n \\0 end\\', X'000000', X'0A0A09', '2000-01-01', '2000-01-01 12:00:00.000001', NULL, '00:00:01.5', NULL, '{"emoji": "😀"}', NULL, NULL),
 (6, -1, 42, -0.5, -1.5, 0, 'émoj', 'ünïcødé 😀 𝄞 中文', REPEAT('x\t\n\\', 50), X'FFFEFDFC5C5C0909', REPEAT(X'005C0A09', 100), '2024-01-01', '2024-01-01 00:00:00', '2024-01-01 00:00:00', '12:34:56', 2024, '{}', 'b c', 0),
 (7, 2, 3, 4, 5, 6, 'r\r', 'carriage\r\nreturn', '\r', X'0D', X'0D0A', '2024-01-02', NULL, NULL, NULL, NULL, NULL, NULL, NULL)"#;

fn servers() -> Option<(String, String)> {
    let my = db::mysql_url_or_skip()?;
    let pg = db::postgres_url_or_skip()?;
    Some((my, pg))
}

/// Every row of the PostgreSQL table in its text form (bytea as hex, line breaks escaped), one
/// line per row in key order.
fn dump(url: &str) -> String {
    db::psql_exec(
        url,
        r"SELECT replace(replace(t::text, E'\n', '\n'), E'\r', '\r') FROM t ORDER BY id",
    )
}

#[test]
fn every_type_arrives_through_copy_as_the_insert_path_writes_it() {
    let Some(_) = servers() else { return };
    let src = db::fresh_mysql_db("pgc_types_src");
    let via_copy = db::fresh_postgres_db("pgc_types_copy");
    let via_insert = db::fresh_postgres_db("pgc_types_insert");
    db::mysql_exec(&src, &format!("{MY_TYPES}; {ROWS}"));
    db::psql_exec(&via_copy, PG_TYPES);
    db::psql_exec(&via_insert, PG_TYPES);

    // COPY is the default on a PostgreSQL target.
    let ws = Workspace::new();
    ws.write("job.lua", JOB);
    let out = common::run_copy_job(&ws, &src, &via_copy, &[]);
    out.code(0);
    let r = common::json_report(&out.stdout);
    assert_eq!(r["target_rows"], 7, "{r}");
    assert!(
        r["batches"].as_u64().unwrap() >= 3 && r["copy_batches"] == r["batches"],
        "the batches did not all go through COPY: {r}\n{}",
        out.stderr
    );

    let ws2 = Workspace::new();
    ws2.write("job.lua", JOB);
    let out = common::run_copy_job(&ws2, &src, &via_insert, &["load=insert"]);
    out.code(0);
    let r = common::json_report(&out.stdout);
    assert_eq!(r["copy_batches"], 0, "{r}");

    let want = dump(&via_insert);
    assert_eq!(want.lines().count(), 7, "{want}");
    assert_eq!(dump(&via_copy), want, "COPY stored a value differently");
    // And the bytes are the source's.
    assert_eq!(
        db::psql_exec(&via_copy, "SELECT encode(vb, 'hex') FROM t WHERE id = 1").trim(),
        "00090a5c0d0aff4e"
    );
    assert_eq!(
        db::psql_exec(&via_copy, "SELECT vc FROM t WHERE id = 7").trim(),
        "carriage\r\nreturn"
    );
    db::drop_mysql_db(&src);
    db::drop_postgres_db(&via_copy);
    db::drop_postgres_db(&via_insert);
}

fn seq_source(name: &str, n: u32) -> String {
    let src = db::fresh_mysql_db(name);
    db::mysql_exec(
        &src,
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v VARBINARY(20))",
    );
    db::mysql_exec(
        &src,
        &format!("INSERT INTO t SELECT seq, CONCAT('v', seq, X'000A09') FROM seq_1_to_{n}"),
    );
    src
}

const PG_T: &str = "CREATE TABLE t (id BIGINT PRIMARY KEY, v BYTEA)";

#[test]
fn a_duplicate_key_fails_the_copy_batch_whole_and_the_copy_resumes_after_the_fix() {
    let Some(_) = servers() else { return };
    let src = seq_source("pgc_dup_src", 5000);
    let dst = db::fresh_postgres_db("pgc_dup_dst");
    db::psql_exec(&dst, PG_T);
    db::psql_exec(&dst, "INSERT INTO t VALUES (2345, 'already here')");
    let ws = Workspace::new();
    ws.write("job.lua", JOB);
    let args = ["batch=500", "workers=1", "ranges=1", "load=copy"];

    let out = common::run_copy_job(&ws, &src, &dst, &args);
    assert_ne!(out.code, 0, "the copy succeeded over a duplicate key");
    out.stderr_has("23505")
        .stderr_has("(id)=(2345)")
        .stderr_has("table=t")
        .stderr_has("after_key=[2000]")
        .stderr_has("batch_keys=[[2001],[2500]]");
    // Batches 1..=4 are in, the failed one not at all, the row that was there untouched.
    assert_eq!(
        db::psql_exec(&dst, "SELECT COUNT(*), MAX(id) FROM t WHERE id <> 2345").trim(),
        "2000\t2000"
    );
    assert_eq!(
        db::psql_exec(
            &dst,
            "SELECT convert_from(v, 'UTF8') FROM t WHERE id = 2345"
        )
        .trim(),
        "already here"
    );

    db::psql_exec(&dst, "DELETE FROM t WHERE id = 2345");
    let out = common::run_copy_job(&ws, &src, &dst, &args);
    out.code(0);
    let r = common::json_report(&out.stdout);
    assert_eq!(r["resumed"], true, "{r}");
    assert_eq!(r["rows"], 3000, "{r}");
    assert_eq!(r["target_rows"], 5000, "{r}");
    assert!(r["copy_batches"].as_u64().unwrap() >= 6, "{r}");
    assert_eq!(
        db::psql_exec(&dst, "SELECT COUNT(DISTINCT id), MIN(id), MAX(id) FROM t").trim(),
        "5000\t1\t5000"
    );
    db::drop_mysql_db(&src);
    db::drop_postgres_db(&dst);
}

#[test]
fn ignore_and_replace_keep_insert_on_conflict_under_load_copy() {
    let Some(_) = servers() else { return };
    let src = db::fresh_mysql_db("pgc_mode_src");
    db::mysql_exec(
        &src,
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO t SELECT seq, CONCAT('new', seq) FROM seq_1_to_100",
    );
    for (mode, want) in [("ignore", "old"), ("replace", "new50")] {
        let dst = db::fresh_postgres_db("pgc_mode_dst");
        db::psql_exec(
            &dst,
            "CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(20));
             INSERT INTO t VALUES (50, 'old')",
        );
        let ws = Workspace::new();
        ws.write("job.lua", JOB);
        let out = common::run_copy_job(
            &ws,
            &src,
            &dst,
            &[&format!("on_conflict={mode}"), "batch=20", "load=copy"],
        );
        out.code(0).stderr_has("COPY cannot skip or replace");
        let r = common::json_report(&out.stdout);
        assert_eq!(r["target_rows"], 100, "{mode}: {r}");
        assert_eq!(r["copy_batches"], 0, "{mode}: {r}");
        assert_eq!(
            db::psql_exec(&dst, "SELECT v FROM t WHERE id = 50").trim(),
            want,
            "{mode}"
        );
        db::drop_postgres_db(&dst);
    }
    db::drop_mysql_db(&src);
}

#[test]
fn a_dry_run_to_postgres_writes_nothing() {
    let Some(_) = servers() else { return };
    let src = seq_source("pgc_dry_src", 50);
    let dst = db::fresh_postgres_db("pgc_dry_dst");
    db::psql_exec(&dst, PG_T);
    let ws = Workspace::new();
    ws.write("job.lua", JOB);
    let out = ws
        .ferry()
        .args([
            "run",
            "./job.lua",
            "--dry-run",
            "-p",
            &format!("src={src}"),
            "-p",
            &format!("dst={dst}"),
        ])
        .run();
    out.code(0);
    let r = common::json_report(&out.stdout);
    assert_eq!(r["would_copy"], 50, "{r}");
    assert_eq!(db::psql_exec(&dst, "SELECT COUNT(*) FROM t").trim(), "0");
    db::drop_mysql_db(&src);
    db::drop_postgres_db(&dst);
}

#[test]
fn a_column_type_without_a_binary_encoding_keeps_inserts_with_a_log_line() {
    let Some(_) = servers() else { return };
    let src = db::fresh_mysql_db("pgc_xml_src");
    db::mysql_exec(
        &src,
        "CREATE TABLE t (id BIGINT PRIMARY KEY, doc VARCHAR(40));
         INSERT INTO t SELECT seq, CONCAT('<a n=\"', seq, '\"/>') FROM seq_1_to_10",
    );
    let dst = db::fresh_postgres_db("pgc_xml_dst");
    db::psql_exec(&dst, "CREATE TABLE t (id BIGINT PRIMARY KEY, doc XML)");
    let ws = Workspace::new();
    ws.write("job.lua", JOB);
    let out = common::run_copy_job(&ws, &src, &dst, &["load=copy"]);
    out.code(0)
        .stderr_has("column(s) doc (xml) of t are not written with COPY");
    let r = common::json_report(&out.stdout);
    assert_eq!(r["target_rows"], 10, "{r}");
    assert_eq!(r["copy_batches"], 0, "{r}");
    assert_eq!(
        db::psql_exec(&dst, "SELECT doc::text FROM t WHERE id = 7").trim(),
        "<a n=\"7\"/>"
    );
    db::drop_mysql_db(&src);
    db::drop_postgres_db(&dst);
}
