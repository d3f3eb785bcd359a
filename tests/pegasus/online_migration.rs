//! pegasus-online-migration of ClusterA.TableA to ClusterB: the parameters every test shares (a
//! ZooKeeper update writing files below state/zk, quick polls, a short verify window), client
//! traffic in the double, and the summary's numbers.
#![allow(dead_code)] // each procedure's test file uses its own part

use serde_json::json;

use crate::common::Ferry;
use crate::pegasus::double::Site;

pub const PROCEDURE: &str = "pegasus-online-migration";

/// `route_params` into `target_table`, the ZooKeeper update, quick polls, then `extra`.
pub fn online_params(site: &Site, target_table: &str, extra: &[&str]) -> Vec<String> {
    let zk = site.ws.join("state/zk");
    let mut v = site.route_params();
    v.extend([
        format!("target_table={target_table}"),
        format!(
            "zk_command=mkdir -p {z} && printf %s {{value}} > {z}/{{table}}",
            z = zk.display()
        ),
        "poll_interval=0.05".into(),
        "settle=0".into(),
        "verify_window=0.6".into(),
    ]);
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

impl Site {
    /// `ferry run pegasus-online-migration --yes` into `target_table` with `online_params(extra)`.
    pub fn online_migration(&self, target_table: &str, extra: &[&str]) -> Ferry {
        self.ferry(PROCEDURE, &online_params(self, target_table, extra))
            .args(["--yes"])
    }

    /// Clients send `qps` requests/s to TableA; they reach ClusterB's `target_table` once the
    /// source denies them and MetaProxy's ZooKeeper node points at ClusterB.
    pub fn with_traffic(&self, target_table: &str, qps: u64) {
        self.edit(|s| {
            s["traffic"] = json!({"table": "TableA", "source": "ClusterA", "target": "ClusterB",
                                  "target_table": target_table, "qps": qps})
        });
    }

    /// What the double saw happen, in order: app env changes, MetaProxy's node changing (with
    /// whether the duplication had drained and writes were still open), remove_dup.
    pub fn events(&self) -> Vec<String> {
        self.state()["events"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The add_dup commands the shell double received.
    pub fn duplications_added(&self) -> Vec<String> {
        self.calls_with("add_dup")
    }

    /// TableA's replica.deny_client_request on ClusterA, None while clients are served.
    pub fn source_denial(&self) -> Option<serde_json::Value> {
        self.app_env("ClusterA", "TableA", "replica.deny_client_request")
    }
}

/// The number after the last `key=` in the output (the procedure's summary).
pub fn summary_value(stderr: &str, key: &str) -> f64 {
    let at = stderr
        .rfind(&format!("{key}="))
        .unwrap_or_else(|| panic!("no {key}= in\n{stderr}"));
    stderr[at + key.len() + 1..]
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}
