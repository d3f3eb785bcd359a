//! starrocks-sync against StarRocks cluster doubles (tests/starrocks/) for what partitions are on
//! a real cluster: streamed loads aborted mid-body, automatic (expression) and list partitioning,
//! shared-data compactions, several physical partitions under one name.

use crate::common;

use crate::starrocks::double;
use crate::starrocks::site;

use double::LoadFault;
use site::site;

/// 40 more rows in p202401 (about 130 bytes each as JSON), so the partition is several KB.
fn grow_january(s: &site::Site, from: u32) {
    grow_january_by(s, from, 40)
}

fn grow_january_by(s: &site::Site, from: u32, count: u32) {
    let rows: Vec<String> = (from..from + count)
        .map(|i| {
            format!(
                "({i}, '2024-01-{:02}', 'buyer-{i}', {i}.25, 'note {i}', '2024-01-05 10:00:00')",
                1 + i % 28
            )
        })
        .collect();
    s.src.sql(&format!(
        "INSERT INTO `shop`.`orders` VALUES {};",
        rows.join(", ")
    ));
}

#[test]
fn a_stream_load_aborted_mid_body_changes_no_partition() {
    let Some(s) = site("") else { return };
    grow_january_by(&s, 2000, 1000);
    // A JSON limit the old file batches had to respect: a chunked body has no Content-Length.
    s.dst.meta().json_max_batch_bytes = 2048;
    s.run(&[]).code(0);
    s.assert_same("shop", "orders");
    let loads = s.dst.loads();
    let jan: Vec<_> = loads
        .iter()
        .filter(|l| l.label.contains("_p202401_v") && l.status == "Success")
        .collect();
    assert_eq!(jan.len(), 1, "one streamed load per partition: {jan:?}");
    assert!(
        loads.iter().all(|l| l.bytes == 0),
        "chunked bodies, no Content-Length: {loads:?}"
    );
    fn has_loads_dir(p: &std::path::Path) -> bool {
        std::fs::read_dir(p).is_ok_and(|d| {
            d.flatten().any(|e| {
                let p = e.path();
                p.is_dir() && (e.file_name() == "loads" || has_loads_dir(&p))
            })
        })
    }
    assert!(
        !has_loads_dir(s.ws.path()),
        "no load files in the state dir"
    );

    // The BE drops the connection halfway through the body, every attempt: the job fails with
    // the reason, and the target partition keeps its old rows.
    let before = s.dst.rows("shop", "orders");
    grow_january_by(&s, 4000, 1000);
    s.dst
        .fault_loads("shop", &[LoadFault::DropMidBody, LoadFault::DropMidBody]);
    let out = s.run(&["-p", "load_retries=2"]);
    out.code(1)
        .stderr_has("p202401")
        .stderr_has("Stream Load of");
    assert_eq!(
        s.dst.rows("shop", "orders"),
        before,
        "no half-loaded partition"
    );
    assert_eq!(s.loads_of("p202401", "Cancelled").len(), 2);
    // The next run loads it whole (the cancelled label is free again).
    s.run(&[]).code(0);
    s.assert_same("shop", "orders");

    // The answer of a committed load is lost: the retry re-runs the SELECT under the same label,
    // is told Label Already Exists, and loads nothing twice.
    grow_january(&s, 6000);
    s.dst.fault_loads("shop", &[LoadFault::CommitThenDrop]);
    s.run(&[]).code(0);
    s.assert_same("shop", "orders");
    assert_eq!(s.loads_of("p202401", "Label Already Exists").len(), 1);
    s.stop();
}

const EVENTS: &str = "CREATE TABLE `shop`.`events` (
  `id` bigint(20) NOT NULL COMMENT \"\",
  `dt` date NOT NULL COMMENT \"\",
  `what` varchar(64) NULL COMMENT \"\"
) ENGINE=OLAP
DUPLICATE KEY(`id`)
PARTITION BY date_trunc('month', `dt`)
DISTRIBUTED BY HASH(`id`) BUCKETS 2
PROPERTIES (\"replication_num\" = \"3\");";

const VISITS: &str = "CREATE TABLE `shop`.`visits` (
  `id` bigint(20) NOT NULL COMMENT \"\",
  `city` varchar(32) NOT NULL COMMENT \"\"
) ENGINE=OLAP
DUPLICATE KEY(`id`)
PARTITION BY (`city`)
DISTRIBUTED BY HASH(`id`) BUCKETS 2
PROPERTIES (\"replication_num\" = \"3\");";

const REGIONS: &str = "CREATE TABLE `shop`.`regions` (
  `id` bigint(20) NOT NULL COMMENT \"\",
  `region` varchar(8) NOT NULL COMMENT \"\"
) ENGINE=OLAP
DUPLICATE KEY(`id`)
PARTITION BY LIST(`region`)
(PARTITION peu VALUES IN (\"eu\", \"uk\"),
PARTITION pus VALUES IN (\"us\"))
DISTRIBUTED BY HASH(`id`) BUCKETS 2
PROPERTIES (\"replication_num\" = \"3\");";

fn partition_names(sr: &double::StarRocks, table: &str) -> Vec<String> {
    let mut names: Vec<String> =
        db::tsv_rows(&sr.sql(&format!("SHOW PARTITIONS FROM `shop`.`{table}`")))
            .into_iter()
            .map(|r| r[1].clone())
            .collect();
    names.sort();
    names
}

use common::db;

#[test]
fn automatic_and_list_partitions_are_created_as_the_target_loads() {
    let Some(s) = site("") else { return };
    s.src.sql(&format!("{EVENTS} {VISITS} {REGIONS}"));
    s.src.sql(
        "INSERT INTO `shop`.`events` VALUES (1, '2024-01-03', 'a'), (2, '2024-02-10', 'b'), (3, '2024-02-11', 'c');
         INSERT INTO `shop`.`visits` VALUES (1, 'paris'), (2, 'rome'), (3, 'paris');
         INSERT INTO `shop`.`regions` VALUES (1, 'eu'), (2, 'us'), (3, 'uk');",
    );
    assert_eq!(partition_names(&s.src, "events"), ["p202401", "p202402"]);
    assert!(
        !s.src.show_create("shop", "events").contains("VALUES"),
        "no partition list"
    );
    let out = s.run(&[]);
    out.code(0);
    for t in ["events", "visits", "regions"] {
        s.assert_same("shop", t);
        assert_eq!(
            partition_names(&s.dst, t),
            partition_names(&s.src, t),
            "{t}"
        );
    }
    assert_eq!(partition_names(&s.dst, "visits"), ["pparis", "prome"]);

    // New months and cities on the source reach the target; what did not move is not copied.
    s.src.sql(
        "INSERT INTO `shop`.`events` VALUES (4, '2024-03-01', 'd');
         INSERT INTO `shop`.`visits` VALUES (4, 'rome'), (5, 'oslo');",
    );
    let before = s.dst.loads().len();
    s.run(&[]).code(0);
    s.assert_same("shop", "events");
    s.assert_same("shop", "visits");
    assert_eq!(
        partition_names(&s.dst, "events"),
        ["p202401", "p202402", "p202403"]
    );
    assert_eq!(
        partition_names(&s.dst, "visits"),
        ["poslo", "pparis", "prome"]
    );
    let labels: Vec<String> = s.dst.loads()[before..]
        .iter()
        .map(|l| l.label.clone())
        .collect();
    assert_eq!(labels.len(), 3, "p202403, prome and poslo only: {labels:?}");

    // A partition dropped on the source is dropped on the target.
    s.src
        .sql("ALTER TABLE `shop`.`events` DROP PARTITION p202401;");
    s.run(&[]).code(0);
    assert_eq!(partition_names(&s.dst, "events"), ["p202402", "p202403"]);
    s.assert_same("shop", "events");
    let again = s.dst.loads().len();
    s.run(&[]).code(0);
    assert_eq!(s.dst.loads().len(), again, "nothing moved, nothing copied");
    s.stop();
}

#[test]
fn compactions_on_a_shared_data_source_are_not_copied_again() {
    let Some(s) = site("") else { return };
    s.src.meta().shared_data = true;
    s.run(&[]).code(0);
    let before = s.dst.loads().len();
    // Compaction publishes a version of its own; the rows stay. Two of them between two looks
    // (VisibleVersion +2) are still no data change: DATA_VERSION did not move.
    s.src.compact("shop", "orders", "p202401");
    s.src.compact("shop", "orders", "p202401");
    s.src.compact("shop", "customers", "customers");
    let out = s.run(&[]);
    out.code(0);
    assert_eq!(
        s.dst.loads().len(),
        before,
        "a compaction is no data change"
    );
    // A load followed by a compaction is.
    s.src
        .sql("INSERT INTO `shop`.`orders` VALUES (9, '2024-01-09', 'Cy', 1.00, NULL, NULL);");
    s.src.compact("shop", "orders", "p202401");
    s.run(&[]).code(0);
    s.assert_same("shop", "orders");
    assert_eq!(s.dst.loads().len(), before + 1, "p202401 copied once");
    // Two loads and two compactions: copied.
    s.src
        .sql("INSERT INTO `shop`.`orders` VALUES (10, '2024-01-10', 'Di', 2.00, NULL, NULL);");
    s.src.compact("shop", "orders", "p202401");
    s.src
        .sql("INSERT INTO `shop`.`orders` VALUES (11, '2024-01-11', 'Ed', 3.00, NULL, NULL);");
    s.src.compact("shop", "orders", "p202401");
    s.run(&[]).code(0);
    s.assert_same("shop", "orders");
    assert_eq!(s.dst.loads().len(), before + 2, "p202401 copied again");
    // The cutover run on a source that compacts between any two looks (twice each time): its
    // rounds copy nothing and its last look (the "source moved" check) finds no lag.
    s.src.compact("shop", "orders", "p202402");
    s.src.compact_on_show("shop", "orders", 2);
    s.run(&["-p", "cutover=true"]).code(0);
    assert_eq!(
        s.dst.loads().len(),
        before + 2,
        "nothing copied during the cutover"
    );
    s.stop();
}

const CLICKS: &str = "CREATE TABLE `shop`.`clicks` (
  `id` bigint(20) NOT NULL COMMENT \"\",
  `page` varchar(64) NULL COMMENT \"\"
) ENGINE=OLAP
DUPLICATE KEY(`id`)
DISTRIBUTED BY RANDOM BUCKETS 1
PROPERTIES (\"replication_num\" = \"3\");";

#[test]
fn physical_partitions_under_one_name_are_copied_once() {
    let Some(s) = site("") else { return };
    s.src.sql(&format!(
        "{CLICKS} INSERT INTO `shop`.`clicks` VALUES (1, '/a'), (2, '/b');"
    ));
    s.src.split_physical_partition("shop", "clicks", "clicks");
    s.src.sql("INSERT INTO `shop`.`clicks` VALUES (3, '/c');");
    let rows = db::tsv_rows(&s.src.sql("SHOW PARTITIONS FROM `shop`.`clicks`"));
    assert_eq!(
        rows.len(),
        2,
        "two physical partitions named clicks: {rows:?}"
    );
    s.run(&[]).code(0);
    s.assert_same("shop", "clicks");
    let clicks = |s: &site::Site| {
        s.dst
            .loads()
            .into_iter()
            .filter(|l| l.label.contains("_clicks_clicks_v"))
            .count()
    };
    assert_eq!(clicks(&s), 1, "one copy for one partition name");
    s.run(&[]).code(0);
    assert_eq!(clicks(&s), 1, "nothing moved");
    // A load into either physical partition moves the partition.
    s.src.sql("INSERT INTO `shop`.`clicks` VALUES (4, '/d');");
    s.run(&[]).code(0);
    s.assert_same("shop", "clicks");
    assert_eq!(clicks(&s), 2);
    s.stop();
}

/// Notes CSV without quoting cannot carry (`\N` is NULL there): the partition goes as JSON.
fn grow_january_unsafe(s: &site::Site, from: u32, count: u32) {
    let rows: Vec<String> = (from..from + count)
        .map(|i| {
            format!(
                "({i}, '2024-01-{:02}', 'buyer-{i}', {i}.25, '{}', '2024-01-05 10:00:00')",
                1 + i % 28,
                if i % 7 == 0 {
                    "\\\\N".to_string()
                } else {
                    format!("note {i} with some words")
                }
            )
        })
        .collect();
    s.src.sql(&format!(
        "INSERT INTO `shop`.`orders` VALUES {};",
        rows.join(", ")
    ));
}

/// The JSON fallback goes in several bounded loads into one stage, so the BE neither refuses a
/// body over its JSON cap nor buffers the whole partition; a failing batch leaves the target
/// partition as it was, and the next run starts the partition over with a new stage.
#[test]
fn a_json_partition_larger_than_the_be_cap_goes_in_several_loads() {
    let Some(s) = site("") else { return };
    grow_january_unsafe(&s, 2000, 1000);
    // Small BE caps: 20 KB of JSON by Content-Length, 40 KB of buffered JSON per load. The
    // partition is about 110 KB as JSON: as one chunked body (the old way) it outgrows the
    // load's memory and the BE answers Fail.
    s.dst.meta().json_max_batch_bytes = 20_000;
    s.dst.meta().load_mem_limit_bytes = 40_000;
    s.run(&["-p", "load_batch_size=16KiB"]).code(0);
    s.assert_same("shop", "orders");
    let jan: Vec<_> = s
        .dst
        .loads()
        .into_iter()
        .filter(|l| l.label.contains("_p202401_v") && l.status == "Success")
        .collect();
    assert!(jan.len() >= 5, "several JSON loads: {jan:?}");
    assert!(
        jan.iter().all(|l| l.bytes > 0 && l.bytes <= 16 * 1024),
        "each with a Content-Length under the cap: {jan:?}"
    );
    assert!(
        s.dst.loads().iter().all(|l| l.status != "Fail"),
        "no load refused: {:?}",
        s.dst.loads()
    );

    // The third batch fails every attempt: the job fails, the target partition is unchanged
    // (the first two batches went into the stage only).
    let before = s.dst.rows("shop", "orders");
    grow_january_unsafe(&s, 4000, 200);
    s.dst.fault_loads(
        "shop",
        &[
            LoadFault::Pass,
            LoadFault::Pass,
            LoadFault::Fail,
            LoadFault::Fail,
        ],
    );
    s.run(&["-p", "load_batch_size=16KiB", "-p", "load_retries=2"])
        .code(1)
        .stderr_has("JSON batch 3");
    assert_eq!(
        s.dst.rows("shop", "orders"),
        before,
        "no half-changed partition"
    );
    // The next run starts over (new stage, new labels) and copies it whole; a batch whose
    // answer is lost is told Label Already Exists on its retry and counted once.
    s.dst
        .fault_loads("shop", &[LoadFault::Pass, LoadFault::CommitThenDrop]);
    s.run(&["-p", "load_batch_size=16KiB"]).code(0);
    s.assert_same("shop", "orders");
    assert_eq!(s.loads_of("p202401", "Label Already Exists").len(), 1);
    s.stop();
}

/// The double's Stream Load limits, sent to its BE port directly: a JSON body with a
/// Content-Length over streaming_load_max_batch_size_mb is refused before a transaction begins
/// (TxnId -1, as its message says) unless `ignore_json_size: true`; a chunked JSON body is not
/// held to that cap but to the load's memory (it is buffered whole); any body over
/// streaming_load_max_mb is refused, chunked ones by losing the connection.
#[test]
fn the_double_limits_stream_load_bodies_as_the_be_does() {
    let Some(_) = db::mysql_url_or_skip() else {
        return;
    };
    let sr = double::StarRocks::start("slim", "root", "pw");
    sr.sql(
        "CREATE DATABASE shop; CREATE TABLE `shop`.`t` (`id` bigint(20) NOT NULL COMMENT \"\", \
         `v` varchar(64) NULL COMMENT \"\") ENGINE=OLAP DUPLICATE KEY(`id`) \
         DISTRIBUTED BY HASH(`id`) BUCKETS 1 PROPERTIES (\"replication_num\" = \"1\");",
    );
    {
        let mut m = sr.meta();
        m.json_max_batch_bytes = 1000;
        m.load_mem_limit_bytes = 4000;
        m.stream_load_max_bytes = 8000;
    }
    let url = format!(
        "http://127.0.0.1:{}/api/shop/t/_stream_load",
        sr.shared.be_http_port
    );
    let body = |from: u32, n: u32| -> String {
        let rows: Vec<String> = (from..from + n)
            .map(|i| format!("{{\"id\": {i}, \"v\": \"value number {i}\"}}"))
            .collect();
        format!("[{}]", rows.join(","))
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let send = |label: &str,
                b: String,
                chunked: bool,
                ignore: bool|
     -> Result<serde_json::Value, String> {
        rt.block_on(async {
            let mut req = reqwest::Client::new()
                .put(&url)
                .basic_auth("root", Some("pw"))
                .header("label", label)
                .header("format", "json")
                .header("strip_outer_array", "true");
            if ignore {
                req = req.header("ignore_json_size", "true");
            }
            req = if chunked {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    b.into_bytes().chunks(500).map(|c| Ok(c.to_vec())).collect();
                req.body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            } else {
                req.body(b)
            };
            let r = req.send().await.map_err(|e| e.to_string())?;
            let text = r.text().await.map_err(|e| e.to_string())?;
            serde_json::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string())
        })
    };
    let b = body(0, 40); // about 1.3 KB: over the JSON cap, under the memory limit
    assert!(b.len() > 1000 && b.len() < 4000);

    let a = send("l_json_cap", b.clone(), false, false).expect("answer");
    assert_eq!(a["Status"], "Fail", "{a}");
    assert!(
        a["Message"]
            .as_str()
            .unwrap()
            .contains("The size of this batch exceed the max size [1000]"),
        "{a}"
    );
    assert_eq!(a["TxnId"], -1, "no transaction began: {a}");

    let a = send("l_json_cap", b.clone(), false, true).expect("answer");
    assert_eq!(
        a["Status"], "Success",
        "ignore_json_size skips the check, the label was free: {a}"
    );
    assert_eq!(a["NumberLoadedRows"], 40);

    let a = send("l_chunked", body(100, 40), true, false).expect("answer");
    assert_eq!(
        a["Status"], "Success",
        "a chunked body has no Content-Length to check: {a}"
    );

    let a = send("l_memory", body(200, 150), true, false).expect("answer");
    assert_eq!(a["Status"], "Fail", "{a}");
    assert!(
        a["Message"]
            .as_str()
            .unwrap()
            .contains("Memory limit exceeded"),
        "{a}"
    );
    assert!(
        a["TxnId"].as_i64().unwrap() > 0,
        "the transaction had begun: {a}"
    );

    let big = body(400, 300);
    assert!(big.len() > 8000);
    let a = send("l_max", big.clone(), false, true).expect("answer");
    assert_eq!(a["Status"], "Fail", "{a}");
    let msg = a["Message"].as_str().unwrap();
    assert!(msg.contains("exceed limit: 8000"), "{a}");
    assert!(
        msg.contains(&format!("txn_id: {}", a["TxnId"])),
        "TxnId agrees with the message: {a}"
    );
    assert!(
        send("l_max_chunked", big, true, true).is_err(),
        "a chunked body over streaming_load_max_mb loses its connection"
    );
    assert_eq!(sr.count("shop", "t"), 80);
    sr.stop();
}
