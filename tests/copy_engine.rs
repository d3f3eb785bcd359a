//! The copy engine through the binary: failures, fail_fast, dry run, shards, kill -9 and resume.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Workspace;

pub fn copy_job() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lua/copy_job.lua")
        .display()
        .to_string()
}

/// `n` files under `dir`, content derived from the name.
pub fn make_tree(dir: &Path, n: usize) {
    for i in 0..n {
        let p = dir.join(format!("d{:02}/obj-{i:05}", i % 17));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("content of object {i} ").repeat(1 + i % 5)).unwrap();
    }
}

/// Every file of `src` is in `dst` with the same content, and `dst` has nothing else.
pub fn assert_same_tree(src: &Path, dst: &Path) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    walk(src, src, &mut a);
    walk(dst, dst, &mut b);
    b.retain(|(k, _)| !k.contains('#')); // object_store's staging files from a killed upload
    a.sort();
    b.sort();
    assert_eq!(a.len(), b.len(), "object counts differ");
    assert!(a == b, "contents differ");
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.push((rel, std::fs::read(&p).unwrap()));
        }
    }
}

#[test]
fn failed_objects_are_reported_and_the_copy_goes_on() {
    let ws = Workspace::new();
    make_tree(&ws.join("src"), 100);
    let out = ws
        .ferry()
        .args([
            "run",
            &copy_job(),
            "-p",
            &format!("src=file://{}", ws.join("src").display()),
            "-p",
            &format!("dst=file://{}", ws.join("dst").display()),
            "-p",
            "bad_keys=true",
        ])
        .run();
    out.code(1).stderr_has("invalid key");
    let r = common::json_report(&out.stdout);
    assert_eq!(r["failed"], 10, "{r}");
    assert_eq!(r["copied"], 90, "{r}");
    assert_eq!(r["errors"], 10);

    let ws2 = Workspace::new();
    make_tree(&ws2.join("src"), 100);
    let out = ws2
        .ferry()
        .args([
            "run",
            &copy_job(),
            "-p",
            &format!("src=file://{}", ws2.join("src").display()),
            "-p",
            &format!("dst=file://{}", ws2.join("dst").display()),
            "-p",
            "bad_keys=true",
            "-p",
            "fail_fast=true",
            "-p",
            "concurrency=1",
        ])
        .run();
    out.code(1);
    let r = common::json_report(&out.stdout);
    assert_eq!(r["failed"], 1, "fail_fast stops at the first failure: {r}");
    assert!(r["copied"].as_u64().unwrap() < 90, "{r}");
}

#[test]
fn dry_run_reports_the_plan_and_writes_nothing() {
    let ws = Workspace::new();
    make_tree(&ws.join("src"), 40);
    std::fs::create_dir_all(ws.join("dst")).unwrap();
    let out = ws
        .ferry()
        .args([
            "run",
            &copy_job(),
            "--dry-run",
            "-p",
            &format!("src=file://{}", ws.join("src").display()),
            "-p",
            &format!("dst=file://{}", ws.join("dst").display()),
            "-p",
            &format!("cache={}", ws.join("cache").display()),
        ])
        .run();
    out.code(0).stderr_has("would copy 40 objects");
    assert_eq!(common::json_report(&out.stdout)["copied"], 40);
    assert_eq!(std::fs::read_dir(ws.join("dst")).unwrap().count(), 0);
    assert!(!ws.join("cache").exists());
}

#[test]
fn shards_split_one_copy_exactly() {
    let ws = Workspace::new();
    make_tree(&ws.join("src"), 300);
    let mut copied = 0;
    for i in 0..3 {
        let out = ws
            .ferry()
            .args([
                "run",
                &copy_job(),
                "--shard",
                &format!("{i}/3"),
                "--state",
                &format!("state-{i}"),
                "-p",
                &format!("src=file://{}", ws.join("src").display()),
                "-p",
                &format!("dst=file://{}", ws.join("dst").display()),
                "-p",
                "compare=none",
            ])
            .run();
        out.code(0);
        let n = common::json_report(&out.stdout)["copied"].as_u64().unwrap();
        assert!(n > 50 && n < 150, "shard {i} copied {n}");
        copied += n;
    }
    assert_eq!(copied, 300, "every object copied by exactly one shard");
    assert_same_tree(&ws.join("src"), &ws.join("dst"));
    ws.ferry()
        .args([
            "run",
            &copy_job(),
            "--shard",
            "3/3",
            "-p",
            "src=x",
            "-p",
            "dst=y",
        ])
        .run()
        .code(2)
        .stderr_has("--shard expects I/N");
}

/// Starts a slowed-down copy, kills it with SIGKILL once `landed` objects are in the cache,
/// re-runs it, and checks nothing is lost or copied twice.
pub fn kill_and_resume(
    ws: &Workspace,
    src_url: &str,
    dst_url: &str,
    total: u64,
    env: &[(String, String)],
    check: &dyn Fn(),
) {
    let cache = ws.join("list.cache");
    let args = vec![
        "run".to_string(),
        copy_job(),
        "-p".into(),
        format!("src={src_url}"),
        "-p".into(),
        format!("dst={dst_url}"),
        "-p".into(),
        format!("cache={}", cache.display()),
        "-p".into(),
        "concurrency=8".into(),
        "-p".into(),
        "ops_rate=150".into(),
    ];
    let mut f = ws.ferry().args(&args);
    for (k, v) in env {
        f = f.env(k, v);
    }
    f.cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = f.cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let lines = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    while lines(&cache) < 200 {
        assert!(Instant::now() < deadline, "the copy did not make progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the copy ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let landed = lines(&cache) as u64;
    assert!(landed < total, "killed too late");
    let text = std::fs::read_to_string(&cache).unwrap();
    let mut keys: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len() as u64, landed, "the list cache has duplicates");

    let mut args2 = args.clone();
    args2.truncate(args.len() - 2); // full speed now
    let mut f = ws.ferry().args(&args2);
    f.cmd.env_remove("AWS_CA_BUNDLE");
    for (k, v) in env {
        f = f.env(k, v);
    }
    let out = f.run();
    out.code(0);
    let r = common::json_report(&out.stdout);
    assert_eq!(r["inventory"], "cache", "{r}");
    assert_eq!(
        r["copied"].as_u64().unwrap(),
        total - landed,
        "resume re-copied finished objects: {r}"
    );
    assert_eq!(r["skipped"].as_u64().unwrap(), landed, "{r}");
    check();
}

#[test]
fn kill_9_mid_copy_resumes_without_loss_or_recopy_file_to_file() {
    let ws = Workspace::new();
    make_tree(&ws.join("src"), 600);
    std::fs::create_dir_all(ws.join("dst")).unwrap();
    let (src, dst) = (ws.join("src"), ws.join("dst"));
    kill_and_resume(
        &ws,
        &format!("file://{}", src.display()),
        &format!("file://{}", dst.display()),
        600,
        &[],
        &|| assert_same_tree(&src, &dst),
    );
}

#[test]
fn kill_9_mid_copy_resumes_without_loss_or_recopy_file_to_s3() {
    let s3 = common::s3::S3Server::start();
    s3.create_bucket("resume");
    let ws = Workspace::new();
    make_tree(&ws.join("src"), 600);
    let src = ws.join("src");
    kill_and_resume(
        &ws,
        &format!("file://{}", src.display()),
        "s3://resume/copy",
        600,
        &s3.env(),
        &|| {
            let keys: Vec<String> = s3.list_files("resume");
            assert_eq!(keys.len(), 600, "every object exactly once");
            for k in keys {
                let rel = k.strip_prefix("copy/").expect("under the prefix");
                assert_eq!(
                    s3.read_file("resume", &k).unwrap(),
                    std::fs::read(src.join(rel)).unwrap(),
                    "{k} differs"
                );
            }
        },
    );
}
