//! copy_table's LOAD DATA LOCAL INFILE path to MariaDB (the server from tests/setup/mariadb.sh):
//! every column type arrives byte for byte as the INSERT path writes it, a server with
//! local_infile off gets INSERTs, and a duplicate key in the middle fails the copy without a
//! half-written batch and resumes after the fix.

use crate::common;

use std::sync::RwLock;

use common::{Workspace, db};

/// The fallback test turns the server's local_infile off for a moment: the other tests of this
/// binary, which expect LOAD DATA to be taken, wait for it.
static LOCAL_INFILE: RwLock<()> = RwLock::new(());

const JOB: &str = r#"
local p = ferry.params{
  {name = "src", type = "string", required = true, secret = true, doc = "source database URL"},
  {name = "dst", type = "string", required = true, secret = true, doc = "target database URL"},
  {name = "load", type = "string", default = "load_data", doc = "insert | load_data"},
  {name = "on_conflict", type = "string", default = "error", doc = "error | ignore | replace"},
  {name = "batch", type = "integer", default = 3, doc = "rows per batch"},
  {name = "workers", type = "integer", default = 2, doc = "workers"},
  {name = "ranges", type = "integer", doc = "key ranges"},
  {name = "verify", type = "string", default = "checksum", doc = "count | checksum | none"},
}
local src = ferry.sql.connect(p.src)
local dst = ferry.sql.connect(p.dst)
local report = ferry.step("copy", "Copy t", function()
  return ferry.sql.copy_table(src, dst, {table = "t", batch = p.batch, workers = p.workers,
    ranges = p.ranges, load = p.load, on_conflict = p.on_conflict, verify = p.verify})
end)
print(ferry.json.encode(report))
"#;

/// The MySQL table of every column type (shared with tests/sql_pg_copy.rs).
pub(crate) const TYPES: &str = "CREATE TABLE t (
  id BIGINT PRIMARY KEY,
  ti TINYINT, ub BIGINT UNSIGNED, de DECIMAL(30,10), f DOUBLE, fl FLOAT,
  c CHAR(5), vc VARCHAR(100), tx TEXT, vb VARBINARY(64), bl BLOB,
  d DATE, dt DATETIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL, tm TIME(6), y YEAR,
  j JSON, e ENUM('a','b c'), bo BOOLEAN
) CHARACTER SET utf8mb4";

const COLUMNS: [&str; 19] = [
    "id", "ti", "ub", "de", "f", "fl", "c", "vc", "tx", "vb", "bl", "d", "dt", "ts", "tm", "y",
    "j", "e", "bo",
];

/// Rows with NULLs, the bytes LOAD DATA reads as structure, text that looks like its escapes,
/// extreme numbers, fractional and negative times, 4-byte UTF-8.
const ROWS: &str = r#"INSERT INTO t VALUES
 (1, -128, 18446744073709551615, -12345678901234567890.0123456789, 0.1, 3.25, 'ab', 'plain', 'text', X'00090A5C0D0AFF4E', X'5C4E', '2024-02-29', '2024-02-29 23:59:59.123456', '2030-01-19 03:14:07.999', '-838:59:59.000000', 2155, '{"a": [1, "x\\ty"], "b": null}', 'b c', 1),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 0, 0, 0, -0.0, 1e-38, '', '', '', X'', X'', '1000-01-01', '1000-01-01 00:00:00', '1999-01-01 00:00:01', '00:00:00', 1901, '[]', 'a', 0),
 (4, 127, 9223372036854775808, 99999999999999999999.9999999999, 1.7976931348623157e308, -3.4e38, 'NULL', '\\N', 'N', X'5C', X'4E554C4C', '9999-12-31', '9999-12-31 23:59:59.999999', '2001-02-03 04:05:06.5', '838:59:59.999999', 2000, '"\\\\N"', 'a', 1),
 (5, 1, 1, 0.0000000001, 2.5e-300, 1.5, 'tab	', 'new
line', 'back\\slash \\t \\n \\0 end\\', X'000000', X'0A0A09', '2000-01-01', '2000-01-01 12:00:00.000001', NULL, '-00:00:01.5', NULL, '{"emoji": "😀"}', NULL, NULL),
 (6, -1, 42, -0.5, -1.5, 0, 'émoj', 'ünïcødé 😀 𝄞 中文', REPEAT('x\t\n\\', 50), X'FFFEFDFC5C5C0909', REPEAT(X'005C0A09', 100), '2024-01-01', '2024-01-01 00:00:00', '2024-01-01 00:00:00', '12:34:56', 2024, '{}', 'b c', 0),
 (7, 2, 3, 4, 5, 6, 'r\r', 'carriage\r\nreturn', '\r', X'0D', X'0D0A', '2024-01-02', NULL, NULL, NULL, NULL, NULL, NULL, NULL)"#;

/// Every column of every row, as hex of its text or byte form ("NULL" for NULL), in key order.
fn dump(url: &str) -> String {
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("COALESCE(HEX(CAST(`{c}` AS BINARY)), 'NULL')"))
        .collect();
    db::mysql_exec(
        url,
        &format!("SELECT {} FROM t ORDER BY id", cols.join(", ")),
    )
}

#[test]
fn every_type_round_trips_byte_for_byte_through_load_data() {
    let Some(_) = db::mysql_url_or_skip() else {
        return;
    };
    let _shared = LOCAL_INFILE.read().unwrap_or_else(|p| p.into_inner());
    let src = db::fresh_mysql_db("ld_types_src");
    let via_load = db::fresh_mysql_db("ld_types_load");
    let via_insert = db::fresh_mysql_db("ld_types_insert");
    db::mysql_exec(&src, &format!("{TYPES}; {ROWS}"));
    db::mysql_exec(&via_load, TYPES);
    db::mysql_exec(&via_insert, TYPES);
    let ws = Workspace::new();
    ws.write("job.lua", JOB);

    let out = common::run_copy_job(&ws, &src, &via_load, &[]);
    out.code(0);
    let r = common::json_report(&out.stdout);
    assert_eq!(r["target_rows"], 7, "{r}");
    assert_eq!(r["verified"], "checksum", "{r}");
    // All of them: a batch LOAD DATA could not take as INSERT would is written with INSERT.
    assert!(
        r["batches"].as_u64().unwrap() >= 3 && r["load_data_batches"] == r["batches"],
        "the batches did not all go through LOAD DATA: {r}\n{}",
        out.stderr
    );

    let ws2 = Workspace::new();
    ws2.write("job.lua", JOB);
    let out = common::run_copy_job(&ws2, &src, &via_insert, &["load=insert"]);
    out.code(0);
    let r = common::json_report(&out.stdout);
    assert_eq!(r["load_data_batches"], 0, "{r}");

    let want = dump(&src);
    assert_eq!(want.lines().count(), 7, "{want}");
    assert_eq!(dump(&via_load), want, "LOAD DATA changed a value");
    assert_eq!(dump(&via_insert), want, "INSERT changed a value");
    for u in [&src, &via_load, &via_insert] {
        db::drop_mysql_db(u);
    }
}

/// Sets the server's local_infile back when dropped, also when the test panics.
struct LocalInfileOff(String);

impl Drop for LocalInfileOff {
    fn drop(&mut self) {
        db::mysql_exec(&self.0, "SET GLOBAL local_infile = 1");
    }
}

#[test]
fn a_server_without_local_infile_gets_inserts_and_says_so() {
    let Some(server) = db::mysql_url_or_skip() else {
        return;
    };
    let _alone = LOCAL_INFILE.write().unwrap_or_else(|p| p.into_inner());
    let before = db::mysql_exec(&server, "SELECT @@GLOBAL.local_infile");
    if before.trim() != "1" {
        db::skip("the test server runs with local_infile off: nothing to turn off");
        return;
    }
    let src = db::fresh_mysql_db("ld_off_src");
    let dst = db::fresh_mysql_db("ld_off_dst");
    db::mysql_exec(&src, &format!("{TYPES}; {ROWS}"));
    db::mysql_exec(&dst, TYPES);
    let ws = Workspace::new();
    ws.write("job.lua", JOB);
    let out = {
        let _off = LocalInfileOff(server.clone());
        db::mysql_exec(&server, "SET GLOBAL local_infile = 0");
        common::run_copy_job(&ws, &src, &dst, &[])
    };
    out.code(0)
        .stderr_has("refuses LOAD DATA LOCAL INFILE (server variable local_infile is OFF)");
    assert_eq!(
        out.stderr.matches("refuses LOAD DATA LOCAL INFILE").count(),
        1,
        "said more than once: {}",
        out.stderr
    );
    let r = common::json_report(&out.stdout);
    assert_eq!(r["load_data_batches"], 0, "{r}");
    assert_eq!(r["target_rows"], 7, "{r}");
    assert_eq!(dump(&dst), dump(&src));
    assert_eq!(
        db::mysql_exec(&server, "SELECT @@GLOBAL.local_infile").trim(),
        "1"
    );
    db::drop_mysql_db(&src);
    db::drop_mysql_db(&dst);
}

#[test]
fn a_duplicate_key_fails_the_batch_whole_and_the_copy_resumes_after_the_fix() {
    let Some(_) = db::mysql_url_or_skip() else {
        return;
    };
    let _shared = LOCAL_INFILE.read().unwrap_or_else(|p| p.into_inner());
    let src = db::fresh_mysql_db("ld_dup_src");
    let dst = db::fresh_mysql_db("ld_dup_dst");
    let create = "CREATE TABLE t (id BIGINT PRIMARY KEY, v VARBINARY(20))";
    db::mysql_exec(&src, create);
    db::mysql_exec(
        &src,
        "INSERT INTO t SELECT seq, CONCAT('v', seq, X'000A09') FROM seq_1_to_5000",
    );
    db::mysql_exec(&dst, create);
    db::mysql_exec(&dst, "INSERT INTO t VALUES (2345, 'already here')");
    let ws = Workspace::new();
    ws.write("job.lua", JOB);
    let args = ["batch=500", "workers=1", "ranges=1"];

    let out = common::run_copy_job(&ws, &src, &dst, &args);
    assert_ne!(out.code, 0, "the copy succeeded over a duplicate key");
    out.stderr_has("Duplicate entry '2345'")
        .stderr_has("table=t")
        .stderr_has("after_key=[2000]")
        .stderr_has("batch_keys=[[2001],[2500]]");
    // Batches 1..=4 are in, the failed one not at all (LOAD DATA alone would have kept its
    // other 499 rows), and the row that was there is untouched.
    assert_eq!(
        db::mysql_exec(&dst, "SELECT COUNT(*), MAX(id) FROM t WHERE id <> 2345").trim(),
        "2000\t2000"
    );
    assert_eq!(
        db::mysql_exec(&dst, "SELECT v FROM t WHERE id = 2345").trim(),
        "already here"
    );

    db::mysql_exec(&dst, "DELETE FROM t WHERE id = 2345");
    let out = common::run_copy_job(&ws, &src, &dst, &args);
    out.code(0);
    let r = common::json_report(&out.stdout);
    assert_eq!(r["resumed"], true, "{r}");
    assert_eq!(r["rows"], 3000, "{r}");
    assert_eq!(r["target_rows"], 5000, "{r}");
    assert_eq!(r["verified"], "checksum", "{r}");
    assert!(r["load_data_batches"].as_u64().unwrap() >= 6, "{r}");
    db::drop_mysql_db(&src);
    db::drop_mysql_db(&dst);
}

#[test]
fn ignore_and_replace_keep_their_meaning_on_load_data() {
    let Some(_) = db::mysql_url_or_skip() else {
        return;
    };
    let _shared = LOCAL_INFILE.read().unwrap_or_else(|p| p.into_inner());
    let src = db::fresh_mysql_db("ld_mode_src");
    let create = "CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(20))";
    db::mysql_exec(&src, create);
    db::mysql_exec(
        &src,
        "INSERT INTO t SELECT seq, CONCAT('new', seq) FROM seq_1_to_100",
    );
    for (mode, want) in [("ignore", "old"), ("replace", "new50")] {
        let dst = db::fresh_mysql_db("ld_mode_dst");
        db::mysql_exec(&dst, create);
        db::mysql_exec(&dst, "INSERT INTO t VALUES (50, 'old')");
        let ws = Workspace::new();
        ws.write("job.lua", JOB);
        let out = common::run_copy_job(
            &ws,
            &src,
            &dst,
            &[&format!("on_conflict={mode}"), "batch=20", "verify=count"],
        );
        out.code(0);
        let r = common::json_report(&out.stdout);
        assert_eq!(r["target_rows"], 100, "{mode}: {r}");
        assert!(r["load_data_batches"].as_u64().unwrap() >= 5, "{mode}: {r}");
        assert_eq!(
            db::mysql_exec(&dst, "SELECT v FROM t WHERE id = 50").trim(),
            want,
            "{mode}"
        );
        db::drop_mysql_db(&dst);
    }
    db::drop_mysql_db(&src);
}
