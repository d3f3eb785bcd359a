//! What the three pegasus-* procedures refuse before they change anything, against the Pegasus
//! double (tests/doubles/pegasus/: the shell, admin-cli, meta/replica HTTP endpoints and
//! pegasus-spark's split as small Python programs keeping two clusters' state in files). Pegasus
//! itself cannot run here.

use crate::pegasus::cold_backup;
use crate::pegasus::copy_data;
use crate::pegasus::double;

use cold_backup::split_command;
use copy_data::copy_params;
use double::{Site, replace_param};
use serde_json::json;

#[test]
fn refusals_name_the_cause_before_anything_changes() {
    let site = Site::new("2.5.0", 30, 4, true);
    // The shell command connects to the wrong cluster.
    let wrong_shell = format!("shell={}", site.shell("ClusterB"));
    let params = replace_param(copy_params(&site, &[]), &wrong_shell);
    site.ferry(copy_data::PROCEDURE, &params)
        .run()
        .code(2)
        .stderr_has("the shell command connects to cluster ClusterB, not source_cluster ClusterA");

    // Geo data needs the target's _geo table too.
    site.copy_data(&["geo_data=true"])
        .run()
        .code(1)
        .stderr_has("TableB_geo does not exist on ClusterB");

    // A target with write-unhealthy partitions.
    site.edit_app("ClusterB", "TableB", |t| t["unhealthy"] = json!(1));
    site.copy_data(&[])
        .run()
        .code(1)
        .stderr_has("has 1 write-unhealthy partition(s)");
    assert!(site.copies().is_empty());

    // Online migration with the checkpoint into a table that already exists.
    let same = Site::new("2.6.0-SNAPSHOT", 30, 4, true);
    same.edit_app("ClusterB", "TableA", |t| *t = double::table_b());
    same.online_migration("TableA", &[]).run().code(1).stderr_has(
        "ClusterB already has a table TableA; duplicating the checkpoint (add_dup -s) creates it",
    );
    assert!(same.duplications_added().is_empty());

    // A bulk load whose bulk_load_info does not match the target table.
    let bulk = Site::new("2.5.0", 30, 4, true);
    let wrong_split = split_command(&bulk).replace("{partition_count}", "16");
    bulk.cold_backup_loading("bulk_load", &wrong_split)
        .run()
        .code(1)
        .stderr_has("start_bulk_load failed: start bulk load failed, error=ERR_INCONSISTENT_STATE")
        .stderr_has("--from-step offline-split");
    assert_eq!(bulk.row_count("ClusterB", "TableB"), 0);
}
