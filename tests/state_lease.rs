//! Two runs on one state on an object store: the run lease (`src/runtime/lease.rs`), written with
//! conditional PUTs to the s3s-fs server (which checks `If-None-Match` and `If-Match`).

use crate::common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::s3::S3Server;
use common::{Ferry, Output, Workspace};

const SCRIPT: &str = r#"
local p = ferry.params{
  {name = "marker", type = "path", required = true, doc = "written when the slow step starts"},
  {name = "secs", type = "number", default = 0, doc = "how long the slow step takes"},
}
ferry.step("slow", "Write the marker, then work for a while", function(ctx)
  ferry.fs.write(p.marker, "started")
  local t = 0
  while t < p.secs do
    ferry.task.sleep(0.25)
    t = t + 0.25
    ctx:checkpoint("t", t)
  end
end)
ferry.step("after", "One more step", function() end)
"#;

const STATE: &str = "s3://state/m1";

fn ferry_on(ws: &Workspace, s3: &S3Server, marker: &str, secs: f64) -> Ferry {
    let script = ws.write("job.lua", SCRIPT);
    let mut f = ws.ferry().args([
        "run",
        script.to_str().unwrap(),
        "--state",
        STATE,
        "-p",
        &format!("marker={}", ws.join(marker).display()),
        "-p",
        &format!("secs={secs}"),
    ]);
    s3.apply_env(&mut f.cmd);
    f
}

fn spawn(f: Ferry) -> Child {
    let mut f = f;
    f.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    f.cmd.spawn().expect("ferry starts")
}

fn finish(c: Child) -> Output {
    let o = c.wait_with_output().unwrap();
    Output {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn server() -> S3Server {
    let s3 = S3Server::start();
    s3.create_bucket("state");
    s3
}

fn put_over_s3(s3: &S3Server, key: &str, body: String) {
    use object_store::ObjectStoreExt;
    let store = s3.store("state");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(store.put(&object_store::path::Path::from(key), body.into()))
        .expect("PUT the lease");
}

fn lease(s3: &S3Server) -> Option<serde_json::Value> {
    s3.read_file("state", "m1/ferry-lease.json")
        .map(|b| serde_json::from_slice(&b).expect("the lease is JSON"))
}

#[test]
fn a_second_run_on_the_same_state_is_refused_naming_the_holder_and_the_first_finishes() {
    let ws = Workspace::new();
    let s3 = server();
    let first = spawn(ferry_on(&ws, &s3, "first", 4.0));
    wait_for("the first run did not start its step", || {
        ws.join("first").exists()
    });
    let held = lease(&s3).expect("the first run holds a lease");
    assert_eq!(held["pid"].as_u64().unwrap(), first.id() as u64);

    let second = ferry_on(&ws, &s3, "second", 0.0).run();
    second
        .code(1)
        .stderr_has("another ferry run holds the state s3://state/m1")
        .stderr_has(&format!("pid {}", first.id()))
        .stderr_has("Wait for that run to end");
    assert!(
        !ws.join("second").exists(),
        "the refused run ran a step: {}",
        second.stderr
    );

    let out = finish(first);
    out.code(0);
    assert!(lease(&s3).is_none(), "the lease is left behind");
    // The journal the first run saved is the state's; the same run again finds every step done.
    std::fs::remove_file(ws.join("first")).unwrap();
    ferry_on(&ws, &s3, "first", 4.0)
        .run()
        .code(0)
        .stderr_has("already done, skipping");
    assert!(!ws.join("first").exists(), "the slow step ran again");
}

#[test]
fn a_run_killed_with_sigkill_leaves_a_lease_the_next_run_on_this_host_takes_over() {
    let ws = Workspace::new();
    let s3 = server();
    let mut first = spawn(ferry_on(&ws, &s3, "first", 30.0));
    wait_for("the first run did not start its step", || {
        ws.join("first").exists()
    });
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(lease(&s3).is_some(), "a killed run cannot delete its lease");

    ferry_on(&ws, &s3, "second", 0.0)
        .run()
        .code(0)
        .stderr_has("took over the lease of an earlier run")
        .stderr_has("on this host is gone");
    assert!(lease(&s3).is_none());
}

#[test]
fn a_live_lease_of_another_host_is_respected_until_it_expires() {
    let ws = Workspace::new();
    let s3 = server();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let put = |expires: u64| {
        let body = serde_json::json!({"host": "pod-elsewhere-7", "pid": 1, "since": now - 100,
                                      "expires": expires});
        s3.put_file("state", "m1/ferry-lease.json", body.to_string().as_bytes());
    };
    put(now + 600);
    ferry_on(&ws, &s3, "refused", 0.0)
        .run()
        .code(1)
        .stderr_has("host pod-elsewhere-7, pid 1")
        .stderr_has("run again after its lease has expired");
    assert!(!ws.join("refused").exists());

    put(now - 5);
    ferry_on(&ws, &s3, "taken", 0.0)
        .run()
        .code(0)
        .stderr_has("took over the lease of an earlier run (host pod-elsewhere-7, pid 1)")
        .stderr_has("expired");
    assert!(ws.join("taken").exists());
}

#[test]
fn a_run_whose_lease_was_taken_over_stops_before_it_writes_the_state_again() {
    let ws = Workspace::new();
    let s3 = server();
    // A 2 s lease, renewed every 0.5 s.
    let run = spawn(ferry_on(&ws, &s3, "first", 20.0).env("FERRY_STATE_LEASE_SECS", "2"));
    wait_for("the run did not start its step", || {
        ws.join("first").exists()
    });
    let journal_before = s3.read_file("state", "m1/journal.jsonl");
    // Another run (an operator who forced it) overwrites the lease, with a real PUT (a file
    // written behind s3s-fs's back would keep the old ETag).
    let body = serde_json::json!({"host": "other", "pid": 99, "since": 0, "expires": u64::MAX / 2});
    put_over_s3(&s3, "m1/ferry-lease.json", body.to_string());
    let out = finish(run);
    out.code(1)
        .stderr_has("was taken over by another ferry run")
        .stderr_has("stopping before this run writes the state again");
    // The other run's lease is left alone, and the step never finished.
    assert_eq!(lease(&s3).unwrap()["host"], "other");
    let journal = String::from_utf8(s3.read_file("state", "m1/journal.jsonl").unwrap()).unwrap();
    assert!(journal_before.is_some());
    assert!(
        !journal.contains("\"step_finished\""),
        "the run saved a finished step after losing its lease:\n{journal}"
    );
}

#[test]
fn shards_of_one_state_each_hold_their_own_lease() {
    let ws = Workspace::new();
    let s3 = server();
    let shard =
        |i: u32, marker: &str| ferry_on(&ws, &s3, marker, 2.0).args(["--shard", &format!("{i}/2")]);
    let a = spawn(shard(0, "a"));
    let b = spawn(shard(1, "b"));
    wait_for("both shards started", || {
        ws.join("a").exists() && ws.join("b").exists()
    });
    assert!(
        s3.read_file("state", "m1/shard-0-of-2/ferry-lease.json")
            .is_some()
    );
    assert!(
        s3.read_file("state", "m1/shard-1-of-2/ferry-lease.json")
            .is_some()
    );
    // A second run of shard 1 is refused; shard 0 and 1 finish.
    shard(1, "b2")
        .run()
        .code(1)
        .stderr_has("another ferry run holds the state s3://state/m1 (shard-1-of-2)");
    finish(a).code(0);
    finish(b).code(0);
}

#[test]
fn on_gcs_the_lease_is_taken_with_generation_preconditions() {
    let Some(g) = common::gcs::gcs() else {
        return;
    };
    let ws = Workspace::new();
    let bucket = g.unique_bucket("lease");
    let state = format!("gs://{bucket}/m1");
    let script = ws.write("job.lua", SCRIPT);
    let run = |marker: &str, secs: f64| {
        let mut f = ws.ferry().args([
            "run",
            script.to_str().unwrap(),
            "--state",
            &state,
            "-p",
            &format!("marker={}", ws.join(marker).display()),
            "-p",
            &format!("secs={secs}"),
        ]);
        g.apply_env(&mut f.cmd);
        f
    };
    let first = spawn(run("first", 3.0));
    wait_for("the first run did not start its step", || {
        ws.join("first").exists()
    });
    assert!(g.get(&bucket, "m1/ferry-lease.json").is_some());
    run("second", 0.0)
        .run()
        .code(1)
        .stderr_has(&format!("another ferry run holds the state {state}"));
    assert!(!ws.join("second").exists());
    finish(first).code(0);
    assert!(
        g.get(&bucket, "m1/ferry-lease.json").is_none(),
        "lease left"
    );
    run("third", 0.0).run().code(0);
}
