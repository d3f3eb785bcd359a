//! starrocks-sync against StarRocks cluster doubles (tests/starrocks/) for what partitions are on
//! a real cluster: streamed loads aborted mid-body, automatic (expression) and list partitioning,
//! shared-data compactions, several physical partitions under one name.

mod common;

#[path = "starrocks/double.rs"]
mod double;
#[path = "starrocks/site.rs"]
mod site;

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
    // Compaction publishes a version of its own; the rows stay.
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
    // The cutover's last look settles although the source compacts meanwhile.
    s.src.compact("shop", "orders", "p202402");
    s.run(&["-p", "cutover=true"]).code(0);
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
