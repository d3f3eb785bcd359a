//! pegasus-copy-data from ClusterA.TableA to ClusterB.TableB: the parameters every test shares,
//! and readers for what the run relayed and logged.
#![allow(dead_code)] // each procedure's test file uses its own part

use std::path::PathBuf;

use crate::common::Ferry;
use crate::pegasus::double::Site;

pub const PROCEDURE: &str = "pegasus-copy-data";

/// `route_params` into TableB, then `extra`.
pub fn copy_params(site: &Site, extra: &[&str]) -> Vec<String> {
    let mut v = site.route_params();
    v.push("target_table=TableB".into());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

impl Site {
    /// `ferry run pegasus-copy-data` with `copy_params(extra)`.
    pub fn copy_data(&self, extra: &[&str]) -> Ferry {
        self.ferry(PROCEDURE, &copy_params(self, extra))
    }

    /// The copy_data commands the shell double received.
    pub fn copies(&self) -> Vec<String> {
        self.calls_with("copy_data")
    }

    pub fn counts(&self) -> Vec<String> {
        self.calls_with("count_data")
    }

    pub fn target_rows(&self) -> usize {
        self.row_count("ClusterB", "TableB")
    }

    /// The output of the first copy_data the procedure started.
    pub fn copy_log(&self) -> PathBuf {
        self.ws
            .join(".ferry/state/pegasus-copy-data/copy_data.1.log")
    }
}

/// What follows "copy_data TableA -> ClusterB.TableB: " on each progress line ferry relayed.
pub fn relayed_progress(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter_map(|l| l.split("copy_data TableA -> ClusterB.TableB: ").nth(1))
        .collect()
}
