//! A site for the pegasus-* procedures: two clusters in the Pegasus double
//! (tests/doubles/pegasus/, a Python stand-in for the shell, admin-cli, the meta/replica HTTP
//! endpoints and the pegasus-spark split; not Pegasus itself), a shell config.ini, and helpers to
//! read and change the double's state.
#![allow(dead_code)] // each procedure's test file uses its own part

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Ferry, Workspace};

pub fn doubles() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/doubles/pegasus")
}

pub struct Site {
    pub ws: Workspace,
    http: Child,
}

/// ClusterB's empty TableB: app id 3, 4 partitions.
pub fn table_b() -> Value {
    json!({"app_id": 3, "partition_count": 4, "rows": {}, "envs": {}})
}

/// Rows `hk{i}:sk -> v{i}` for i in 0..n.
pub fn rows(n: usize) -> Value {
    let mut m = serde_json::Map::new();
    for i in 0..n {
        m.insert(format!("hk{i}:sk"), json!(format!("v{i}")));
    }
    Value::Object(m)
}

impl Site {
    /// ClusterA holds TableA (`rows` rows, `partitions` partitions, app id 2); ClusterB holds
    /// TableB (empty, 4 partitions, app id 3) unless `target` is false.
    pub fn new(version: &str, n: usize, partitions: u64, target: bool) -> Site {
        let ws = Workspace::new();
        std::fs::create_dir_all(ws.join("state")).unwrap();
        std::fs::create_dir_all(ws.join("hdfs")).unwrap();
        let mut b_apps = json!({});
        if target {
            b_apps = json!({"TableB": table_b()});
        }
        let state = json!({
            "version": version,
            "providers": {"hdfs_xxx": ws.join("hdfs").to_str().unwrap()},
            "clusters": {
                "ClusterA": {"cold_backup_root": "ClusterA", "next_app_id": 5, "apps": {
                    "TableA": {"app_id": 2, "partition_count": partitions, "rows": rows(n), "envs": {}}}},
                "ClusterB": {"cold_backup_root": "ClusterB", "next_app_id": 7, "apps": b_apps}
            }
        });
        std::fs::write(
            ws.join("state/state.json"),
            serde_json::to_string_pretty(&state).unwrap(),
        )
        .unwrap();
        let http = Command::new(doubles().join("pegasus_http"))
            .env("PEGASUS_DOUBLE_STATE", ws.join("state"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the Pegasus HTTP double (tests/setup/python3.sh installs it)");
        wait_until(20, "the Pegasus HTTP double did not start", || {
            ws.join("state/http.json").exists()
        });
        let site = Site { ws, http };
        site.write_config("");
        site
    }

    pub fn metas(&self, cluster: &str) -> String {
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(self.ws.join("state/http.json")).unwrap(),
        )
        .unwrap();
        v[cluster]["metas"].as_str().unwrap().to_string()
    }

    /// The shell's config.ini with both clusters, plus `extra` lines.
    pub fn write_config(&self, extra: &str) {
        self.ws.write(
            "pegasus/config.ini",
            &format!(
                "[apps.mimic]\ntype = dsn.app.mimic\n\n[pegasus.clusters]\nClusterA = {}\nClusterB = {}\n{extra}",
                self.metas("ClusterA"),
                self.metas("ClusterB")
            ),
        );
    }

    pub fn shell(&self, cluster: &str) -> String {
        format!(
            "{} pegasus/config.ini {cluster}",
            doubles().join("pegasus_shell").display()
        )
    }

    /// The parameters every procedure starts with: the shell on ClusterA, from ClusterA.TableA
    /// to ClusterB.
    pub fn route_params(&self) -> Vec<String> {
        vec![
            format!("shell={}", self.shell("ClusterA")),
            "source_cluster=ClusterA".into(),
            "source_table=TableA".into(),
            "target_cluster=ClusterB".into(),
        ]
    }

    pub fn admin_cli(&self) -> String {
        doubles().join("admin-cli").display().to_string()
    }

    pub fn state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.ws.join("state/state.json")).unwrap())
            .unwrap()
    }

    /// Changes the state; only while no procedure runs (the double locks, the test does not).
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut v = self.state();
        f(&mut v);
        std::fs::write(
            self.ws.join("state/state.json"),
            serde_json::to_string_pretty(&v).unwrap(),
        )
        .unwrap();
    }

    pub fn fault(&self, name: &str, value: Value) {
        self.edit(|s| s["faults"][name] = value);
    }

    pub fn clear_fault(&self, name: &str) {
        self.edit(|s| {
            if let Some(faults) = s["faults"].as_object_mut() {
                faults.remove(name);
            }
        });
    }

    /// Changes one table (creating its entry if need be); only while no procedure runs.
    pub fn edit_app(&self, cluster: &str, table: &str, f: impl FnOnce(&mut Value)) {
        self.edit(|s| f(&mut s["clusters"][cluster]["apps"][table]));
    }

    pub fn app(&self, cluster: &str, table: &str) -> Value {
        self.state()["clusters"][cluster]["apps"][table].clone()
    }

    /// The table's app env `key`, None where it is not set.
    pub fn app_env(&self, cluster: &str, table: &str, key: &str) -> Option<Value> {
        self.app(cluster, table)["envs"].get(key).cloned()
    }

    pub fn row_count(&self, cluster: &str, table: &str) -> usize {
        self.app(cluster, table)["rows"]
            .as_object()
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Every command the shell and admin-cli doubles received, in order.
    pub fn calls(&self) -> Vec<String> {
        self.ws
            .read("state/calls.log")
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn calls_with(&self, needle: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.contains(needle))
            .collect()
    }

    /// Every HTTP request the double answered ("cluster role path").
    pub fn http_log(&self) -> Vec<String> {
        self.ws
            .read("state/http.log")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `ferry run PROCEDURE` in the workspace with the double's environment.
    pub fn ferry(&self, procedure: &str, params: &[String]) -> Ferry {
        let mut args = vec!["run".to_string(), procedure.to_string()];
        for p in params {
            args.push("-p".into());
            args.push(p.clone());
        }
        self.ws
            .ferry()
            .args(args)
            .env(
                "PEGASUS_DOUBLE_STATE",
                self.ws.join("state").to_str().unwrap(),
            )
            .env("PEGASUS_DOUBLE_TICK", "0.05")
            .env("FERRY_PROGRESS_INTERVAL", "0.2")
    }
}

/// The flags the tests give `ferry run`, by name.
pub trait RunFlags {
    /// `--yes`: confirms without a terminal.
    fn yes(self) -> Self;
    /// `--dry-run` with its own state folder, so the real run's journal is left alone.
    fn dry_run(self, state: &str) -> Self;
    /// `--from-step`: runs again from `step` on, even where the journal says done.
    fn starting_at(self, step: &str) -> Self;
    /// `PEGASUS_DOUBLE_TICK`: the doubles' tick in seconds (how fast copies and backups advance).
    fn tick(self, seconds: &str) -> Self;
}

impl RunFlags for Ferry {
    fn yes(self) -> Ferry {
        self.args(["--yes"])
    }

    fn dry_run(self, state: &str) -> Ferry {
        self.args(["--dry-run", "--state", state])
    }

    fn starting_at(self, step: &str) -> Ferry {
        self.args(["--from-step", step])
    }

    fn tick(self, seconds: &str) -> Ferry {
        self.env("PEGASUS_DOUBLE_TICK", seconds)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = self.http.kill();
        let _ = self.http.wait();
    }
}

/// `params` with the parameter named like `param` (`key=value`) set to it in place.
pub fn replace_param(mut params: Vec<String>, param: &str) -> Vec<String> {
    let key = &param[..=param.find('=').expect("key=value")];
    let at = params
        .iter()
        .position(|p| p.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in {params:?}"));
    params[at] = param.to_string();
    params
}

/// Polls `done()` every 20 ms, failing with `what` after `seconds`.
pub fn wait_until(seconds: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `ferry` and SIGKILLs it once `ready()` holds (it must still be running then).
pub fn kill_when(mut f: Ferry, ready: impl Fn() -> bool) {
    f.cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = f.cmd.spawn().expect("ferry starts");
    wait_until(60, "no progress", || {
        ready() || {
            assert!(
                child.try_wait().unwrap().is_none(),
                "finished before it was killed"
            );
            false
        }
    });
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
}
