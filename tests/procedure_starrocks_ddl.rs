//! starrocks-sync's DDL sync against the StarRocks cluster doubles (tests/starrocks/): schema
//! changes, include/exclude lists, views, materialized views, properties, ddl_job_* settings.

use crate::starrocks::site;

use site::site;

#[test]
fn a_schema_change_on_the_source_recreates_the_target_table() {
    let Some(s) = site("") else { return };
    s.run(&[]).code(0);
    s.src.sql(
        "ALTER TABLE `shop`.`customers` ADD COLUMN `tier` int(11) NULL COMMENT \"\";
         UPDATE `shop`.`customers` SET `tier` = 2 WHERE `id` = 1;",
    );
    // With ddl_job_allow_drop_schema_change_table=false the table is left alone (and said so).
    let kept = s.run(&["-p", "ddl_job_allow_drop_schema_change_table=false"]);
    kept.code(0)
        .stderr_has("shop.customers: schema differs on the target");
    assert!(!s.dst.show_create("shop", "customers").contains("tier"));
    let out = s.run(&[]);
    out.code(0)
        .stderr_has("drop table shop.customers (schema differs");
    assert!(
        s.dst
            .show_create("shop", "customers")
            .contains("`tier` int(11)")
    );
    s.assert_same("shop", "customers");
    assert!(
        s.dst
            .rows("shop", "customers")
            .iter()
            .any(|r| r == &["1", "Ann", "2"])
    );
    s.assert_same("shop", "orders");
    // A new month on the source: the partition is added on the target and copied.
    s.src.sql(
        "ALTER TABLE `shop`.`orders` ADD PARTITION p202404 VALUES [(\"2024-04-01\"), (\"2024-05-01\"));
         INSERT INTO `shop`.`orders` VALUES (7, '2024-04-02', 'Eve', 3.00, NULL, NULL);",
    );
    s.run(&[])
        .code(0)
        .stderr_has("add partition p202404 to shop.orders");
    s.assert_same("shop", "orders");
    s.stop();
}

#[test]
fn include_and_exclude_lists_choose_what_is_synced() {
    let Some(s) = site("") else { return };
    s.src.sql(
        "CREATE TABLE `scratch`.`keep` (`id` int(11) NOT NULL COMMENT \"\") ENGINE=OLAP DUPLICATE KEY(`id`)
           DISTRIBUTED BY HASH(`id`) BUCKETS 1 PROPERTIES (\"replication_num\" = \"1\");
         INSERT INTO `scratch`.`keep` VALUES (7), (8);",
    );
    // include first (shop and scratch.keep), then exclude (shop.orders).
    let out = s.run(&[
        "-p",
        "include_data_list=shop,scratch.keep",
        "-p",
        "exclude_data_list=shop.orders",
    ]);
    out.code(0);
    s.assert_same("scratch", "keep");
    s.assert_same("shop", "customers");
    s.assert_same("shop", "audit_log");
    assert!(!s.dst.has_table("shop", "orders"));
    assert!(!s.dst.has_table("scratch", "tmp"));
    out.stderr_has("total_table=3");
    s.stop();
}

#[test]
fn views_are_synced_when_enabled() {
    let Some(s) = site("") else { return };
    s.src.sql(
        "CREATE VIEW `shop`.`big_orders` AS SELECT `id`, `amount` FROM `shop`.`orders` WHERE `amount` > 6;",
    );
    // enable_view_sync=false (the default) leaves views alone.
    s.run(&[]).code(0);
    assert!(
        !s.dst
            .meta()
            .views
            .contains_key(&("shop".into(), "big_orders".into()))
    );
    let out = s.run(&["-p", "enable_view_sync=true"]);
    out.code(0).stderr_has("create view shop.big_orders");
    let q = "SELECT `id` FROM `shop`.`big_orders` ORDER BY `id`;";
    assert_eq!(s.dst.sql(q), s.src.sql(q));
    assert_eq!(s.dst.sql(q), "1\n2\n");
    // A changed view is dropped and created again (ddl_job_allow_drop_inconsistent_view=true).
    s.src.sql(
        "DROP VIEW `shop`.`big_orders`;
         CREATE VIEW `shop`.`big_orders` AS SELECT `id`, `amount` FROM `shop`.`orders` WHERE `amount` > 50;",
    );
    s.run(&["-p", "enable_view_sync=true"])
        .code(0)
        .stderr_has("drop inconsistent view shop.big_orders");
    assert_eq!(s.dst.sql(q), "2\n");
    s.stop();
}

#[test]
fn materialized_views_are_created_from_their_definition_when_enabled() {
    let Some(s) = site("") else { return };
    let mv = |filter: &str| {
        format!(
            "CREATE MATERIALIZED VIEW `shop`.`daily` DISTRIBUTED BY HASH(`dt`) REFRESH ASYNC
             PROPERTIES (\"replication_num\" = \"3\")
             AS SELECT `dt`, SUM(`amount`) AS total FROM `shop`.`orders` {filter} GROUP BY `dt`;"
        )
    };
    s.src.sql(&mv(""));
    let key = ("shop".to_string(), "daily".to_string());
    // Not synced by default, and never taken for a table or a logical view.
    s.run(&["-p", "enable_view_sync=true"]).code(0);
    assert!(!s.dst.meta().mvs.contains_key(&key));
    assert!(!s.dst.meta().views.contains_key(&key));
    assert!(s.dst.loads().iter().all(|l| !l.label.contains("daily")));
    s.run(&[
        "-p",
        "enable_materialized_view_sync=true",
        "-p",
        "target_cluster_replication_num=1",
    ])
    .code(0)
    .stderr_has("create materialized view shop.daily");
    let text = s.dst.meta().mvs.get(&key).cloned().unwrap_or_default();
    assert!(text.contains("REFRESH ASYNC"), "{text}");
    assert!(text.contains("\"replication_num\" = \"1\""), "{text}");
    // The replication_num rewrite alone is no difference.
    s.run(&["-p", "enable_materialized_view_sync=true"])
        .code(0)
        .stderr_lacks("materialized view shop.daily");
    // Changed on the source: dropped and created again.
    s.src.sql(&format!(
        "DROP MATERIALIZED VIEW `shop`.`daily`; {}",
        mv("WHERE `amount` > 1")
    ));
    s.run(&["-p", "enable_materialized_view_sync=true"])
        .code(0)
        .stderr_has("drop inconsistent materialized view shop.daily");
    let text = s.dst.meta().mvs.get(&key).cloned().unwrap_or_default();
    assert!(text.contains("WHERE `amount` > 1"), "{text}");
    s.stop();
}

#[test]
fn table_properties_follow_the_source_when_enabled() {
    let Some(s) = site("") else { return };
    s.run(&["-p", "target_cluster_replication_num=1"]).code(0);
    assert!(
        s.dst
            .show_create("shop", "orders")
            .contains("\"replication_num\" = \"1\"")
    );
    s.src
        .sql("ALTER TABLE `shop`.`orders` SET (\"in_memory\" = \"true\");");
    // Off (the default): the target keeps its properties.
    s.run(&["-p", "target_cluster_replication_num=1"])
        .code(0)
        .stderr_lacks("set property");
    assert!(
        s.dst
            .show_create("shop", "orders")
            .contains("\"in_memory\" = \"false\"")
    );
    // On: the changed property follows; replication_num stays what the target setting says.
    s.run(&[
        "-p",
        "target_cluster_replication_num=1",
        "-p",
        "enable_table_property_sync=true",
    ])
    .code(0)
    .stderr_has("set property in_memory=true on shop.orders");
    let ddl = s.dst.show_create("shop", "orders");
    assert!(ddl.contains("\"in_memory\" = \"true\""), "{ddl}");
    assert!(ddl.contains("\"replication_num\" = \"1\""), "{ddl}");
    s.stop();
}

#[test]
fn ddl_settings_shape_the_target_tables() {
    let Some(s) = site("") else { return };
    s.src.sql(
        "CREATE TABLE `shop`.`events` (
           `id` int(11) NOT NULL COMMENT \"\",
           `kind` varchar(20) NULL COMMENT \"\",
           INDEX idx_kind (`kind`) USING BITMAP COMMENT 'bitmap'
         ) ENGINE=OLAP DUPLICATE KEY(`id`) DISTRIBUTED BY HASH(`id`) BUCKETS 1
         PROPERTIES (\"replication_num\" = \"3\");
         INSERT INTO `shop`.`events` VALUES (1, 'click'), (2, 'view');",
    );
    s.dst.sql(
        "CREATE DATABASE shop;
         CREATE TABLE `shop`.`old_stuff` (`id` int(11) NOT NULL COMMENT \"\") ENGINE=OLAP
           DUPLICATE KEY(`id`) DISTRIBUTED BY HASH(`id`) BUCKETS 1 PROPERTIES (\"replication_num\" = \"1\");",
    );
    let out = s.run(&[
        "-p",
        "ddl_job_allow_drop_target_only=true",
        "-p",
        "target_cluster_storage_volume=vol1",
        "-p",
        "target_cluster_enable_persistent_index=true",
    ]);
    out.code(0)
        .stderr_has("drop table shop.old_stuff (only on the target)");
    assert!(!s.dst.has_table("shop", "old_stuff"));
    let events = s.dst.show_create("shop", "events");
    assert!(!events.contains("USING BITMAP"), "{events}");
    assert!(events.contains("\"storage_volume\" = \"vol1\""), "{events}");
    assert!(
        events.contains("\"enable_persistent_index\" = \"true\""),
        "{events}"
    );
    s.assert_same("shop", "events");
    // A partition dropped on the source is dropped on the target.
    s.src
        .sql("ALTER TABLE `shop`.`orders` DROP PARTITION p202401;");
    s.run(&[])
        .code(0)
        .stderr_has("drop partition p202401 of shop.orders (dropped on the source)");
    assert!(!s.dst.show_create("shop", "orders").contains("p202401"));
    s.assert_same("shop", "orders");
    // Bitmap index sync on: the index is part of the schema, so the table is made again with it.
    s.run(&["-p", "enable_bitmap_index_sync=true"])
        .code(0)
        .stderr_has("drop table shop.events (schema differs");
    assert!(s.dst.show_create("shop", "events").contains("USING BITMAP"));
    s.assert_same("shop", "events");
    s.stop();
}
