//! pegasus-cold-backup from ClusterA.TableA to ClusterB: the parameters every test shares (a
//! backup to the hdfs_xxx provider, a quick poll, a fixed upload limit), and readers for the
//! backups, their directories and the upload limits the replica servers were given.
#![allow(dead_code)] // each procedure's test file uses its own part

use std::path::PathBuf;

use serde_json::Value;

use crate::common::Ferry;
use crate::pegasus::double::{self, Site};

pub const PROCEDURE: &str = "pegasus-cold-backup";

/// `route_params`, a backup to hdfs_xxx with a quick poll and a fixed upload limit, then `extra`.
pub fn backup_params(site: &Site, extra: &[&str]) -> Vec<String> {
    let hdfs = site.ws.join("hdfs");
    let mut v = site.route_params();
    v.extend([
        format!("admin_cli={}", site.admin_cli()),
        "provider=hdfs_xxx".into(),
        "backup_path=/user/pegasus/backup".into(),
        format!("remove_command=rm -rf {}{{path}}", hdfs.display()),
        "poll_interval=0.05".into(),
        "raise_every=0".into(),
        "rate_max=150".into(),
    ]);
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// The offline split by the pegasus-spark double, reading and writing below the site's hdfs/.
pub fn split_command(site: &Site) -> String {
    let hdfs = site.ws.join("hdfs");
    format!(
        "split_command={} --backup {h}{{backup_dir}} --out {h}{{bulk_load_dir}} --app-id {{app_id}} --partition-count {{partition_count}}",
        double::doubles().join("pegasus_split").display(),
        h = hdfs.display()
    )
}

impl Site {
    /// `ferry run pegasus-cold-backup` with `backup_params(extra)`.
    pub fn cold_backup(&self, extra: &[&str]) -> Ferry {
        self.ferry(PROCEDURE, &backup_params(self, extra))
    }

    /// A cold backup loaded into the existing TableB by `method` (bulk_load or ingest_behind)
    /// through /user/pegasus/split, split by `split` (a `split_command=` parameter).
    pub fn cold_backup_loading(&self, method: &str, split: &str) -> Ferry {
        self.cold_backup(&[
            &format!("method={method}"),
            "target_table=TableB",
            "bulk_load_root=/user/pegasus/split",
            split,
        ])
    }

    /// ClusterA's backups (id, info), as the meta double knows them.
    pub fn backups(&self) -> Vec<(String, Value)> {
        self.state()["clusters"]["ClusterA"]["backups"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    pub fn backup_dir(&self, id: &str) -> PathBuf {
        self.ws
            .join(&format!("hdfs/user/pegasus/backup/ClusterA/{id}"))
    }

    /// The `admin-cli: backup` commands the admin-cli double received.
    pub fn backups_started(&self) -> Vec<String> {
        self.calls_with("admin-cli: backup")
    }

    /// The config of each replica server of `cluster`, in order.
    pub fn node_configs(&self, cluster: &str) -> Vec<Value> {
        let st = self.state();
        st["clusters"][cluster]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| st["clusters"][cluster]["node_config"][n.as_str().unwrap()].clone())
            .collect()
    }

    /// The upload limit each replica server of ClusterA was given, in order.
    pub fn rate_history(&self) -> Vec<Vec<String>> {
        self.node_configs("ClusterA")
            .iter()
            .map(|c| {
                c["history"]
                    .as_array()
                    .map(|h| h.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// How many times the HTTP double was asked to change a replica server's config.
    pub fn http_config_updates(&self) -> usize {
        self.http_log()
            .iter()
            .filter(|l| l.contains("/updateConfig"))
            .count()
    }
}
