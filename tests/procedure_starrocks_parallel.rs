//! starrocks-sync against StarRocks cluster doubles (tests/starrocks/): partitions of one table
//! load at the same time (several Stream Loads in flight, bounded by replication_job_batch_size),
//! and one of them failing mid-body leaves every partition of the target old or new, never half.
//! The double holds each load until enough have started (`StarRocks::hold_loads_until`), so
//! overlap is observed as state, not timed.

use crate::starrocks::double;
use crate::starrocks::site;

use double::LoadFault;
use site::site;

const ORDER_PARTS: [&str; 3] = ["p202401", "p202402", "p202403"];

fn orders_labels(labels: &[String]) -> Vec<&String> {
    labels
        .iter()
        .filter(|l| l.starts_with("ferry_shop_orders_p2024"))
        .collect()
}

/// Rows of one partition of shop.orders, sorted.
fn part_rows(sr: &double::StarRocks, part: &str) -> Vec<Vec<String>> {
    let mut r = sr.backing(
        &format!("SELECT * FROM {{db}}.`orders` PARTITION (`{part}`)"),
        "shop",
    );
    r.sort();
    r
}

/// About `per` new rows in each of the three partitions of shop.orders (about 60 bytes each in
/// the CSV body, so 1000 make a body well above the 32 KiB the double reads before a mid-body
/// drop).
fn grow_every_partition(s: &site::Site, from: u32, per: u32) {
    s.src.sql(&format!(
        "INSERT INTO `shop`.`orders` SELECT seq + {from}, DATE_ADD('2024-01-01', INTERVAL seq % 90 DAY),
           CONCAT('buyer ', seq), (seq % 1000) / 100, CONCAT('note ', seq), NULL
           FROM `shop`.`seq_1_to_{}`;",
        per * 3
    ));
}

#[test]
fn partitions_of_one_table_are_in_flight_at_the_same_time() {
    let Some(s) = site("") else { return };
    // Three loads: p202401 and p202402 of shop.orders (p202403 is empty) and shop.customers.
    s.dst.hold_loads_until(3);
    let out = s.run(&[]);
    out.code(0);
    s.assert_same("shop", "orders");
    s.assert_same("shop", "customers");
    let peak = s.dst.peak_in_flight();
    let orders = orders_labels(&peak);
    assert!(
        orders.iter().any(|l| l.contains("_p202401_"))
            && orders.iter().any(|l| l.contains("_p202402_")),
        "two partitions of shop.orders were never in flight together: {peak:?}"
    );

    // replication_job_batch_size bounds the loads in flight, partitions of one table included.
    grow_every_partition(&s, 1000, 50);
    s.dst.reset_in_flight();
    let out = s.run(&["-p", "replication_job_batch_size=1"]);
    out.code(0);
    s.assert_same("shop", "orders");
    s.assert_same("shop", "customers");
    let peak = s.dst.peak_in_flight();
    assert_eq!(peak.len(), 1, "replication_job_batch_size=1: {peak:?}");
    assert_eq!(
        s.dst.tables("shop").len(),
        2,
        "no staging table left: {:?}",
        s.dst.tables("shop")
    );
    s.stop();
}

#[test]
fn one_parallel_load_dropped_mid_body_leaves_every_partition_old_or_new() {
    let Some(s) = site("") else { return };
    s.run(&[]).code(0);
    let old: Vec<Vec<Vec<String>>> = ORDER_PARTS.iter().map(|p| part_rows(&s.dst, p)).collect();
    // Every partition of shop.orders moves: three loads.
    grow_every_partition(&s, 1000, 1000);
    let new: Vec<Vec<Vec<String>>> = ORDER_PARTS.iter().map(|p| part_rows(&s.src, p)).collect();
    for (o, n) in old.iter().zip(&new) {
        assert_ne!(o, n, "every partition changed on the source");
    }
    // The first load to start is cut off after 32 KiB of its body; all three are held until all
    // have started, so the others are in flight beside it. One attempt per load: it fails.
    s.dst.fault_loads("shop", &[LoadFault::DropMidBody]);
    s.dst.hold_loads_until(3);
    let out = s.run(&["-p", "load_retries=1"]);
    out.code(1)
        .stderr_has("1 job(s) failed")
        .stderr_has("run the same command again");
    let loads = s.dst.loads();
    let cut: Vec<_> = loads.iter().filter(|l| l.status == "Cancelled").collect();
    assert_eq!(cut.len(), 1, "{loads:?}");
    assert!(cut[0].bytes >= 32 * 1024, "cut mid-body: {:?}", cut[0]);
    let peak = s.dst.peak_in_flight();
    assert!(
        orders_labels(&peak).len() >= 2,
        "several partitions of shop.orders were in flight together: {peak:?}"
    );
    // Each partition is exactly its old rows or exactly the source's new rows; only the one whose
    // load was cut kept the old.
    let mut kept_old = Vec::new();
    for (i, p) in ORDER_PARTS.iter().enumerate() {
        let now = part_rows(&s.dst, p);
        if now == old[i] {
            kept_old.push(p.to_string());
        } else {
            assert_eq!(
                now, new[i],
                "{p} is neither its old rows nor the new: half-loaded"
            );
        }
    }
    assert_eq!(kept_old.len(), 1, "one load failed: {kept_old:?}");
    assert!(
        cut[0].label.contains(&format!("_{}_v", kept_old[0])),
        "the cut load {} is the partition that kept its rows ({kept_old:?})",
        cut[0].label
    );
    out.stderr_has(&format!("/{} failed", kept_old[0]));

    // The next run copies what is left: everything equal, no staging table left.
    s.dst.reset_in_flight();
    s.run(&[]).code(0);
    s.assert_same("shop", "orders");
    s.assert_same("shop", "customers");
    assert_eq!(
        s.dst.tables("shop").len(),
        2,
        "no staging table left: {:?}",
        s.dst.tables("shop")
    );
    s.stop();
}
