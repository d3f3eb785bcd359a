//! Scale-out: one migration split across N ferry processes (as the pods of a Kubernetes Indexed
//! Job), per-shard state on disk and on S3, the finalize phase, and the rendered manifests.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::s3::S3Server;
use common::{Ferry, Output, Workspace};

fn job() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lua/scale_out_job.lua")
        .display()
        .to_string()
}

/// `n` files under `dir`, content derived from the name.
fn make_tree(dir: &Path, n: usize) {
    for i in 0..n {
        let p = dir.join(format!("d{:02}/obj-{i:05}", i % 13));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("object {i} ").repeat(1 + i % 7)).unwrap();
    }
}

fn files_of(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                // object_store's staging files of an upload killed midway are not objects.
                if !rel.contains('#') {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// `dst` holds exactly the files of `src`, with the same content (a short message when not).
fn assert_same_files(src: &Path, dst: &Path) {
    let (a, b) = (files_of(src), files_of(dst));
    let missing: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).take(5).collect();
    let extra: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).take(5).collect();
    let differ: Vec<&String> = a
        .iter()
        .filter(|(k, v)| b.get(*k).is_some_and(|w| w != *v))
        .map(|(k, _)| k)
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "trees differ: missing {missing:?}, extra {extra:?}, content differs {differ:?}"
    );
}

/// The JSON report the job prints after its copy step.
fn report(out: &Output) -> serde_json::Value {
    let line = out
        .stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no report\n{}\n{}", out.stdout, out.stderr));
    serde_json::from_str(line).unwrap()
}

fn run_args(phase_args: &[String], state: &str, src: &str, dst: &str) -> Vec<String> {
    let mut a = vec!["run".to_string(), job()];
    a.extend(phase_args.iter().cloned());
    a.extend([
        "--state".into(),
        state.into(),
        "-p".into(),
        format!("src={src}"),
        "-p".into(),
        format!("dst={dst}"),
    ]);
    a
}

fn shard_args(i: u32, n: u32) -> Vec<String> {
    vec![
        "--phase".into(),
        "shards".into(),
        "--shard".into(),
        format!("{i}/{n}"),
    ]
}

fn finalize_args(n: u32) -> Vec<String> {
    vec![
        "--phase".into(),
        "finalize".into(),
        "--shards".into(),
        n.to_string(),
    ]
}

/// Runs `n` shard processes at once and returns their outputs in shard order.
fn run_shards_together(n: u32, make: &dyn Fn(u32) -> Ferry) -> Vec<Output> {
    let children: Vec<Child> = (0..n)
        .map(|i| {
            let mut f = make(i);
            f.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            f.cmd.spawn().expect("ferry starts")
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            Output {
                code: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            }
        })
        .collect()
}

#[test]
fn shard_processes_copy_every_object_exactly_once_and_finalize_runs_once() {
    let ws = Workspace::new();
    make_tree(&ws.join("src"), 400);
    let src = format!("file://{}", ws.join("src").display());
    let dst = format!("file://{}", ws.join("dst").display());
    let state = ws.join("state").display().to_string();
    let outs = run_shards_together(4, &|i| {
        ws.ferry()
            .args(run_args(&shard_args(i, 4), &state, &src, &dst))
    });
    let mut total = 0;
    for (i, out) in outs.iter().enumerate() {
        out.code(0)
            .stderr_has(&format!("Summary of scale_out_job, shard {i}/4"))
            .stderr_has("left for finalize");
        let r = report(out);
        let copied = r["copied"].as_u64().unwrap();
        assert!(
            copied > 40 && copied < 160,
            "shard {i} copied {copied}: {r}"
        );
        assert_eq!(copied + r["other_shards"].as_u64().unwrap(), 400, "{r}");
        total += copied;
        assert!(
            ws.join(&format!("state/shard-{i}-of-4/journal.jsonl"))
                .exists()
        );
    }
    assert_eq!(total, 400, "every object copied by exactly one shard");
    assert_same_files(&ws.join("src"), &ws.join("dst"));
    // The once-only steps did not run in any shard.
    assert!(!ws.join("dst/_FERRY_DONE").exists());

    let out = ws
        .ferry()
        .args(run_args(&finalize_args(4), &state, &src, &dst))
        .run();
    out.code(0)
        .stderr_has("done by shards")
        .stderr_has("finalize of 4 shards");
    assert_eq!(ws.read("dst/_FERRY_DONE"), "400");
    // The copy step's counters in finalize are the sums over the shards.
    assert_eq!(report(&out)["copied"], 400, "{}", out.stdout);

    let out = ws.ferry().args(["status", "--state", &state]).run();
    out.code(0)
        .stdout_has("4 of 4 shard(s) finished")
        .stdout_has("finalize: finished");
}

#[test]
fn the_indexed_job_index_and_declared_count_pick_the_shard() {
    let ws = Workspace::new();
    make_tree(&ws.join("src"), 60);
    let src = format!("file://{}", ws.join("src").display());
    let dst = format!("file://{}", ws.join("dst").display());
    let mut total = 0;
    for i in 0..3 {
        let phase = vec!["--phase".to_string(), "shards".to_string()];
        let mut f = ws.ferry().args(run_args(&phase, "state", &src, &dst));
        f = f.env("JOB_COMPLETION_INDEX", &i.to_string());
        f = if i == 0 {
            f.env("FERRY_SHARDS", "3")
        } else {
            f.args(["--shards", "3"])
        };
        let out = f.run();
        out.code(0).stderr_has(&format!("shard {i}/3"));
        total += report(&out)["copied"].as_u64().unwrap();
        assert!(
            ws.join(&format!("state/shard-{i}-of-3/journal.jsonl"))
                .exists()
        );
    }
    assert_eq!(total, 60);
    // A count without an index, and an index beyond the count, are usage errors.
    ws.ferry()
        .args(run_args(
            &["--shards".into(), "3".into()],
            "state",
            &src,
            &dst,
        ))
        .env_remove_index()
        .run()
        .code(2)
        .stderr_has("needs this run's shard index");
    ws.ferry()
        .args(run_args(
            &["--shards".into(), "3".into()],
            "state",
            &src,
            &dst,
        ))
        .env("JOB_COMPLETION_INDEX", "3")
        .run()
        .code(2)
        .stderr_has("not below the shard count 3");
}

trait NoIndex {
    fn env_remove_index(self) -> Self;
}

impl NoIndex for Ferry {
    fn env_remove_index(mut self) -> Ferry {
        self.cmd
            .env_remove("JOB_COMPLETION_INDEX")
            .env_remove("FERRY_SHARDS");
        self
    }
}

/// Lines of a list cache file.
fn cache_lines(p: &Path) -> u64 {
    std::fs::read_to_string(p)
        .map(|t| t.lines().count() as u64)
        .unwrap_or(0)
}

#[test]
fn finalize_refuses_while_a_killed_shard_is_unfinished_and_the_shard_rerun_alone_finishes() {
    let ws = Workspace::new();
    make_tree(&ws.join("src"), 600);
    let src = format!("file://{}", ws.join("src").display());
    let dst = format!("file://{}", ws.join("dst").display());
    let state = ws.join("state").display().to_string();
    let mut copied_by_others = 0;
    for i in 0..2 {
        let out = ws
            .ferry()
            .args(run_args(&shard_args(i, 3), &state, &src, &dst))
            .run();
        out.code(0);
        copied_by_others += report(&out)["copied"].as_u64().unwrap();
    }
    // Shard 2, slowed down, killed with SIGKILL in the middle of its copy.
    let mut args = run_args(&shard_args(2, 3), &state, &src, &dst);
    args.extend([
        "-p".into(),
        "ops_rate=100".into(),
        "-p".into(),
        "concurrency=4".into(),
    ]);
    let mut f = ws.ferry().args(&args);
    f.cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = f.cmd.spawn().unwrap();
    let cache = ws.join("state/shard-2-of-3/list.cache");
    let deadline = Instant::now() + Duration::from_secs(60);
    // The cache starts with the listing of the destination (the other shards' objects).
    while cache_lines(&cache) < copied_by_others + 40 {
        assert!(Instant::now() < deadline, "shard 2 made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "shard 2 ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let landed = cache_lines(&cache) - copied_by_others;
    let share = 600 - copied_by_others;
    assert!(landed < share, "killed too late ({landed} of {share})");

    let out = ws
        .ferry()
        .args(run_args(&finalize_args(3), &state, &src, &dst))
        .run();
    out.code(1)
        .stderr_has("finalize refused")
        .stderr_has("shard 2/3: step copy unfinished")
        .stderr_has("--shard 2/3");
    assert!(
        !ws.join("dst/_FERRY_DONE").exists(),
        "no once-only step ran"
    );
    ws.ferry()
        .args(["status", "--state", &state])
        .run()
        .code(0)
        .stdout_has("shard 2/3: unfinished: step copy")
        .stdout_has("2 of 3 shard(s) finished");

    // Shard 2 alone, at full speed: it copies the rest of its share and nothing else.
    let out = ws
        .ferry()
        .args(run_args(&shard_args(2, 3), &state, &src, &dst))
        .run();
    out.code(0);
    let r = report(&out);
    assert_eq!(r["copied"].as_u64().unwrap(), share - landed, "{r}");
    assert_eq!(r["skipped"].as_u64().unwrap(), landed, "{r}");
    assert_same_files(&ws.join("src"), &ws.join("dst"));

    let out = ws
        .ferry()
        .args(run_args(&finalize_args(3), &state, &src, &dst))
        .run();
    out.code(0);
    assert_eq!(ws.read("dst/_FERRY_DONE"), "600");
    // Finalize needs every shard to have run the sharded steps with the same parameters.
    let mut other = run_args(&finalize_args(3), &state, &src, &dst);
    other.extend(["-p".into(), "concurrency=3".into()]);
    ws.ferry()
        .args(&other)
        .run()
        .code(1)
        .stderr_has("finished it with other parameters");
}

#[test]
fn a_shard_run_without_phase_runs_every_step_as_before() {
    let ws = Workspace::new();
    make_tree(&ws.join("src"), 30);
    let src = format!("file://{}", ws.join("src").display());
    let dst = format!("file://{}", ws.join("dst").display());
    let out = ws
        .ferry()
        .args(run_args(
            &["--shard".into(), "0/2".into()],
            "state",
            &src,
            &dst,
        ))
        .run();
    out.code(0).stderr_has("runs once per shard");
    assert!(ws.join("dst/_FERRY_DONE").exists());
    ws.ferry()
        .args(run_args(
            &["--phase".into(), "finalize".into()],
            "state",
            &src,
            &dst,
        ))
        .run()
        .code(2)
        .stderr_has("needs the shard count");
}

/// An S3 server with buckets `src` (holding `n` objects: key and value of object i), `dst` and
/// `state`.
fn s3_source(n: usize, object: impl Fn(usize) -> (String, String)) -> S3Server {
    let s3 = S3Server::start();
    for b in ["src", "dst", "state"] {
        s3.create_bucket(b);
    }
    for i in 0..n {
        let (key, value) = object(i);
        s3.put_file("src", &key, value.as_bytes());
    }
    s3
}

fn s3_ferry(ws: &Workspace, s3: &S3Server) -> Ferry {
    let mut f = ws.ferry();
    s3.apply_env(&mut f.cmd);
    f
}

/// PUT requests per object key of `bucket`.
fn puts_per_key(s3: &S3Server, bucket: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    let prefix = format!("PUT /{bucket}/");
    for line in s3.request_log() {
        if let Some(rest) = line.strip_prefix(&prefix) {
            let key = rest
                .split([' ', '?'])
                .next()
                .unwrap_or_default()
                .to_string();
            *m.entry(key).or_insert(0) += 1;
        }
    }
    m
}

#[test]
fn shards_on_s3_with_state_on_s3_copy_each_object_once_and_share_only_the_bucket() {
    let ws = Workspace::new();
    let s3 = s3_source(240, |i| {
        (
            format!("k{:02}/obj-{i:04}", i % 9),
            format!("v{i}").repeat(3),
        )
    });
    let state = "s3://state/migration-1";
    let outs = run_shards_together(3, &|i| {
        s3_ferry(&ws, &s3).args(run_args(&shard_args(i, 3), state, "s3://src", "s3://dst"))
    });
    let mut total = 0;
    for out in &outs {
        out.code(0);
        total += report(out)["copied"].as_u64().unwrap();
    }
    assert_eq!(total, 240);
    let puts = puts_per_key(&s3, "dst");
    assert_eq!(puts.len(), 240, "every object written");
    assert!(
        puts.values().all(|n| *n == 1),
        "an object was written twice: {puts:?}"
    );
    // Each shard's journal and cache are objects in the state bucket; nothing local is left.
    let files = s3.list_files("state");
    for i in 0..3 {
        assert!(
            files.contains(&format!("migration-1/shard-{i}-of-3/journal.jsonl")),
            "{files:?}"
        );
        assert!(
            files.contains(&format!("migration-1/shard-{i}-of-3/list.cache")),
            "{files:?}"
        );
    }
    assert!(!ws.join(".ferry").exists() && !ws.join("state").exists());

    s3_ferry(&ws, &s3)
        .args(["status", "--state", state])
        .run()
        .code(0)
        .stdout_has("3 of 3 shard(s) finished")
        .stdout_has("finalize: not started");
    let out = s3_ferry(&ws, &s3)
        .args(run_args(&finalize_args(3), state, "s3://src", "s3://dst"))
        .run();
    out.code(0);
    assert_eq!(s3.read_file("dst", "_FERRY_DONE").unwrap(), b"240");
    assert!(
        s3.list_files("state")
            .contains(&"migration-1/finalize/journal.jsonl".to_string())
    );
    // A re-run of a shard reads its journal back from the bucket: the copy step is done.
    let out = s3_ferry(&ws, &s3)
        .args(run_args(&shard_args(1, 3), state, "s3://src", "s3://dst"))
        .run();
    out.code(0).stderr_has("skipped (done)");
    assert!(
        puts_per_key(&s3, "dst").values().all(|n| *n == 1),
        "the re-run wrote again"
    );
}

#[test]
fn finalize_with_state_on_s3_refuses_while_a_shard_has_not_run() {
    let ws = Workspace::new();
    let s3 = s3_source(30, |i| (format!("obj-{i:03}"), "x".to_string()));
    let state = "s3://state/m";
    s3_ferry(&ws, &s3)
        .args(run_args(&shard_args(0, 2), state, "s3://src", "s3://dst"))
        .run()
        .code(0);
    s3_ferry(&ws, &s3)
        .args(run_args(&finalize_args(2), state, "s3://src", "s3://dst"))
        .run()
        .code(1)
        .stderr_has("shard 1/2 has not run");
    assert!(s3.read_file("dst", "_FERRY_DONE").is_none());
}

/// The `kubernetes-validate` command (tests/setup/kube-validate.sh installs it), as a program and
/// its first arguments: on PATH, or the Python module when pip put the script off PATH.
fn kube_validator() -> Option<Vec<String>> {
    let candidates = [
        vec!["kubernetes-validate".to_string()],
        vec![
            "python3".to_string(),
            "-m".to_string(),
            "kubernetes_validate".to_string(),
        ],
    ];
    candidates.into_iter().find(|c| {
        std::process::Command::new(&c[0])
            .args(&c[1..])
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn validate(validator: &[String], file: &Path) -> Output {
    let o = std::process::Command::new(&validator[0])
        .args(&validator[1..])
        .args(["--strict", "-k", "1.33.0"])
        .arg(file)
        .output()
        .unwrap();
    Output {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The manifests as JSON documents, parsed by PyYAML (a real YAML parser, which
/// kubernetes-validate depends on).
fn yaml_docs(file: &Path) -> Vec<serde_json::Value> {
    let o = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn kube_manifests_validate_against_the_kubernetes_schemas() {
    let Some(validator) = kube_validator() else {
        // Straight to stderr (printed by a plain `cargo test` too): SKIPPED: <test>: <why>.
        common::db::skip(
            "kubernetes-validate is not installed (tests/setup/kube-validate.sh installs it with pip)",
        );
        return;
    };
    let ws = Workspace::new();
    let out = ws
        .ferry()
        .args([
            "kube",
            "seafile-migrate",
            "-p",
            "conf_dir=/seafile/conf",
            "-p",
            "dest_conf_dir=/seafile/new-conf",
            "-p",
            "types=commits,fs,blocks",
            "--shards",
            "8",
            "--parallelism",
            "3",
            "--image",
            "registry.example/ferry:1.0",
            "--state",
            "s3://ferry-state/seafile-1",
            "--env",
            "AWS_REGION=eu-west-1",
            "--namespace",
            "migrations",
            "--yes",
        ])
        .run();
    out.code(0);
    let file = ws.write("seafile.yaml", &out.stdout);
    validate(&validator, &file).code(0);
    let docs = yaml_docs(&file);
    assert_eq!(docs.len(), 3);
    let (cm, shards, fin) = (&docs[0], &docs[1], &docs[2]);
    assert_eq!(cm["kind"], "ConfigMap");
    // The script in the ConfigMap is the bundled one, byte for byte, with its parameters.
    let source = ws.ferry().args(["show", "seafile-migrate"]).run().stdout;
    assert_eq!(
        cm["data"]["seafile-migrate.lua"]
            .as_str()
            .unwrap()
            .trim_end(),
        source.trim_end()
    );
    let params: serde_json::Value =
        serde_json::from_str(cm["data"]["params.json"].as_str().unwrap()).unwrap();
    assert_eq!(params["types"], "commits,fs,blocks");
    assert_eq!(shards["spec"]["completionMode"], "Indexed");
    assert_eq!(shards["spec"]["completions"], 8);
    assert_eq!(shards["spec"]["parallelism"], 3);
    assert_eq!(shards["metadata"]["namespace"], "migrations");
    let c = &shards["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2).any(|w| w == ["--phase", "shards"]),
        "{args:?}"
    );
    assert!(args.windows(2).any(|w| w == ["--shards", "8"]), "{args:?}");
    assert!(
        args.windows(2)
            .any(|w| w == ["--state", "s3://ferry-state/seafile-1"]),
        "{args:?}"
    );
    assert_eq!(
        c["envFrom"][0]["secretRef"]["name"],
        "ferry-seafile-migrate-credentials"
    );
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert_eq!(fin["spec"]["suspend"], true);
    let fargs = fin["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(fargs.contains("\"finalize\""), "{fargs}");

    // A secret parameter is referenced in the Secret, never written out.
    let out = ws
        .ferry()
        .args([
            "kube",
            "astra-sideloader",
            "-p",
            "token=AstraCS:very-secret",
            "-p",
            "db_id=d1",
            "--shards",
            "2",
            "--state",
            "/var/lib/ferry",
            "--volume-claim",
            "ferry-state",
        ])
        .run();
    out.code(0).stderr_has("FERRY_PARAM_TOKEN");
    assert!(
        !out.stdout.contains("very-secret"),
        "a secret value is in the manifests"
    );
    let file = ws.write("astra.yaml", &out.stdout);
    validate(&validator, &file).code(0);
    let docs = yaml_docs(&file);
    let env = docs[1]["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(
        env.contains("FERRY_PARAM_TOKEN") && env.contains("secretKeyRef"),
        "{env}"
    );

    // The validator does reject a broken manifest (so the passes above mean something).
    let broken = std::fs::read_to_string(&file)
        .unwrap()
        .replace("completions: 2", "completions: two");
    let file = ws.write("broken.yaml", &broken);
    assert_ne!(
        validate(&validator, &file).code,
        0,
        "the validator accepted a broken Job"
    );

    // Local state is refused: pods on other nodes would not share it.
    ws.ferry()
        .args([
            "kube",
            "seafile-migrate",
            "--shards",
            "2",
            "--state",
            "./state",
        ])
        .run()
        .code(2)
        .stderr_has("share no folder");
}

fn sql_copy_job() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lua/sql_copy_job.lua")
        .display()
        .to_string()
}

#[test]
fn copy_table_shards_take_disjoint_key_ranges_mariadb() {
    use common::db;
    let Some(_) = db::mysql_url_or_skip() else {
        return;
    };
    let src = db::fresh_mysql_db("shard_src");
    let dst = db::fresh_mysql_db("shard_dst");
    let create = "CREATE TABLE big (id BIGINT PRIMARY KEY, a VARCHAR(64), v VARCHAR(100))";
    db::mysql_exec(&src, create);
    db::mysql_exec(&dst, create);
    // Keys with gaps and a dense tail, so slices hold different numbers of rows.
    let mut sql = String::new();
    for chunk in (0..9000).collect::<Vec<i64>>().chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| {
                let id = if *i < 3000 { i * 13 } else { 40_000 + i };
                format!("({id},'a{i}','{}')", "v".repeat((*i % 50) as usize))
            })
            .collect();
        sql.push_str(&format!("INSERT INTO big VALUES {};\n", values.join(",")));
    }
    db::mysql_exec(&src, &sql);
    let ws = Workspace::new();
    let outs = run_shards_together(3, &|i| {
        ws.ferry().args([
            "run".to_string(),
            sql_copy_job(),
            "--phase".into(),
            "shards".into(),
            "--shard".into(),
            format!("{i}/3"),
            "-p".into(),
            format!("src={src}"),
            "-p".into(),
            format!("dst={dst}"),
            "-p".into(),
            "batch=200".into(),
        ])
    });
    let mut rows = 0;
    for (i, out) in outs.iter().enumerate() {
        // The job's one step is not declared sharded: with --phase shards it is left for
        // finalize, so run it as a plain shard (no --phase) below instead.
        out.code(0).stderr_has("left for finalize");
        assert!(
            !out.stdout.contains("\"rows\""),
            "shard {i} copied in a once-only step"
        );
    }
    let outs = run_shards_together(3, &|i| {
        ws.ferry().args([
            "run".to_string(),
            sql_copy_job(),
            "--shard".into(),
            format!("{i}/3"),
            "--state".into(),
            "sql-state".into(),
            "-p".into(),
            format!("src={src}"),
            "-p".into(),
            format!("dst={dst}"),
            "-p".into(),
            "batch=200".into(),
        ])
    });
    for (i, out) in outs.iter().enumerate() {
        out.code(0);
        let r = report(out);
        // Each shard verified its own slice by checksum, both sides.
        assert_eq!(r["verified"], "checksum", "shard {i}: {r}");
        assert_eq!(r["source_rows"], r["target_rows"], "shard {i}: {r}");
        let n = r["rows"].as_u64().unwrap();
        assert!(n > 0, "shard {i} copied nothing: {r}");
        rows += n;
    }
    // A duplicate would have failed its INSERT (primary key); a gap shows in the count.
    assert_eq!(rows, 9000);
    assert_eq!(
        db::mysql_exec(&dst, "SELECT COUNT(*) FROM big").trim(),
        "9000"
    );
    assert_eq!(
        db::mysql_exec(&src, "SELECT SUM(id), SUM(LENGTH(v)) FROM big"),
        db::mysql_exec(&dst, "SELECT SUM(id), SUM(LENGTH(v)) FROM big")
    );
}

/// druid-deep-storage as 3 shards and a finalize run: each segment file is copied by one shard,
/// the load specs are rewritten once, by finalize, after every shard copied.
#[test]
fn druid_deep_storage_shards_copy_segments_and_finalize_rewrites_once() {
    use common::db;
    use common::druid as fx;
    let Some(_) = db::mysql_url_or_skip() else {
        return;
    };
    let url = db::fresh_mysql_db("druid_shards");
    let ws = Workspace::new();
    let segs = fx::build(&fx::storage_root(ws.path()));
    db::mysql_exec(
        &url,
        &(fx::mysql_ddl(true) + &fx::insert_sql(&segs, false, true)),
    );
    let conf = ws.write(
        "druid/conf/druid/cluster/_common/common.runtime.properties",
        &fx::runtime_properties(&url, Path::new("var/druid/segments")),
    );
    let new_dir = ws.join("new-deep-storage");
    let druid = |phase: Vec<String>| {
        let mut a = vec![
            "run".to_string(),
            "druid-deep-storage".into(),
            "--yes".into(),
            "--state".into(),
            "druid-state".into(),
            "-p".into(),
            format!("druid_conf={}", conf.display()),
            "-p".into(),
            format!("target=file://{}", new_dir.display()),
        ];
        a.extend(phase);
        ws.ferry()
            .args(a)
            .env("DRUID_METADATA_PASSWORD", &fx::password(&url))
    };
    let originals: BTreeMap<String, String> = segs
        .iter()
        .map(|s| (s.id.clone(), s.payload.clone()))
        .collect();
    let mut copied = 0;
    for i in 0..2 {
        let out = druid(shard_args(i, 3)).run();
        out.code(0).stderr_has("left for finalize");
        copied += journal_counter(
            &ws.join(&format!("druid-state/shard-{i}-of-3/journal.jsonl")),
            "copy-segments",
            "copied",
        );
    }
    // Shard 2 has not run: finalize refuses and the metadata is untouched.
    druid(finalize_args(3))
        .run()
        .code(1)
        .stderr_has("shard 2/3 has not run");
    assert_eq!(fx::payloads(&url), originals);
    druid(shard_args(2, 3)).run().code(0);
    copied += journal_counter(
        &ws.join("druid-state/shard-2-of-3/journal.jsonl"),
        "copy-segments",
        "copied",
    );
    assert_eq!(
        fx::payloads(&url),
        originals,
        "a shard changed the metadata"
    );

    let out = druid(finalize_args(3)).run();
    out.code(0).stderr_has("done by shards");
    // Plan-wide counts are not multiplied by the number of shards.
    let tombstones = segs.iter().filter(|s| s.spec.contains("tombstone")).count();
    let copy_line = out
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("copy-segments"))
        .unwrap_or_else(|| panic!("no copy-segments row\n{}", out.stderr));
    assert!(
        copy_line.contains(&format!("tombstones={tombstones} "))
            || copy_line.ends_with(&format!("tombstones={tombstones}")),
        "{copy_line}"
    );
    // Every local segment file was copied exactly once, by one of the shards.
    let files: std::collections::BTreeSet<String> = segs
        .iter()
        .filter(|s| s.is_local())
        .map(|s| fx::expected_dir(&segs, s))
        .collect();
    assert_eq!(copied as usize, files.len());
    for dir in &files {
        assert!(new_dir.join(dir).join("index.zip").exists(), "{dir}");
    }
    let want: BTreeMap<String, String> = segs
        .iter()
        .map(|s| {
            let p = if s.is_local() {
                let spec = format!(
                    r#"{{"type":"local","path":"{}/{}/index.zip"}}"#,
                    new_dir.display(),
                    fx::expected_dir(&segs, s)
                );
                s.payload.replace(&s.spec, &spec)
            } else {
                s.payload.clone()
            };
            (s.id.clone(), p)
        })
        .collect();
    assert_eq!(fx::payloads(&url), want);
    db::drop_mysql_db(&url);
}

/// A counter of a step's last completion in a journal.
fn journal_counter(journal: &Path, step: &str, name: &str) -> u64 {
    common::json_lines(journal)
        .iter()
        .rev()
        .find(|e| e["event"] == "step_finished" && e["step"] == step)
        .and_then(|e| e["counters"][name].as_u64())
        .unwrap_or_else(|| panic!("{step} did not finish in {}", journal.display()))
}

/// seafile-migrate as 2 shards and a finalize run, on the demo's sample storage: the shards copy
/// every object (each once), seafile.conf is replaced once, by finalize, after verification.
#[test]
fn seafile_migrate_shards_copy_and_finalize_replaces_the_conf_once() {
    let ws = Workspace::new();
    let out = ws
        .ferry()
        .args(["demo", "--generate-only", "--dir"])
        .arg_path(&ws.join("site"))
        .run();
    out.code(0);
    let vals: BTreeMap<String, String> = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let objects: u64 = vals["objects"].parse().unwrap();
    let conf = Path::new(&vals["conf_dir"]).join("seafile.conf");
    let original = std::fs::read_to_string(&conf).unwrap();
    let seafile = |phase: Vec<String>| {
        let mut a = vec![
            "run".to_string(),
            "seafile-migrate".into(),
            "--yes".into(),
            "--state".into(),
            "sf-state".into(),
            "-p".into(),
            format!("conf_dir={}", vals["conf_dir"]),
            "-p".into(),
            format!("seafile_data={}", vals["seafile_data"]),
            "-p".into(),
            format!("dest_conf_dir={}", vals["dest_conf_dir"]),
            "-p".into(),
            "verify=hash".into(),
        ];
        a.extend(phase);
        ws.ferry().args(a)
    };
    let outs = run_shards_together(2, &|i| seafile(shard_args(i, 2)));
    let mut copied = 0;
    for (i, out) in outs.iter().enumerate() {
        out.code(0).stderr_has("left for finalize");
        let j = ws.join(&format!("sf-state/shard-{i}-of-2/journal.jsonl"));
        for step in ["initial-migration", "final-migration"] {
            let e = common::json_lines(&j)
                .into_iter()
                .rev()
                .find(|e| e["event"] == "step_finished" && e["step"] == step)
                .unwrap_or_else(|| panic!("shard {i} did not finish {step}"));
            for t in ["commits", "fs", "blocks"] {
                copied += e["counters"][format!("{t}_copied")].as_u64().unwrap();
            }
        }
    }
    assert_eq!(copied, objects, "every object copied once, by one shard");
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        original,
        "a shard replaced seafile.conf"
    );
    let out = seafile(finalize_args(2)).run();
    out.code(0).stderr_has("done by shards");
    assert_ne!(
        std::fs::read_to_string(&conf).unwrap(),
        original,
        "finalize did not replace seafile.conf"
    );
    let dest = files_of(Path::new(&vals["dest_storage"]));
    assert_eq!(dest.len() as u64, objects);
}

trait ArgPath {
    fn arg_path(self, p: &Path) -> Self;
}

impl ArgPath for Ferry {
    fn arg_path(mut self, p: &Path) -> Ferry {
        self.cmd.arg(p);
        self
    }
}

#[test]
fn a_killed_shard_with_state_on_s3_is_refused_by_finalize_and_finishes_when_rerun() {
    let ws = Workspace::new();
    let s3 = s3_source(300, |i| (format!("obj-{i:04}"), format!("value {i}")));
    let state = "s3://state/m";
    let (src, dst) = ("s3://src", "s3://dst");
    let mut others = 0;
    for i in 0..2 {
        let out = s3_ferry(&ws, &s3)
            .args(run_args(&shard_args(i, 3), state, src, dst))
            .run();
        out.code(0);
        others += report(&out)["copied"].as_u64().unwrap();
    }
    let share = 300 - others;
    let mut args = run_args(&shard_args(2, 3), state, src, dst);
    args.extend([
        "-p".into(),
        "ops_rate=60".into(),
        "-p".into(),
        "concurrency=2".into(),
    ]);
    let mut f = s3_ferry(&ws, &s3).args(&args);
    f.cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = f.cmd.spawn().unwrap();
    let landed = || puts_per_key(&s3, "dst").len() as u64 - others;
    let deadline = Instant::now() + Duration::from_secs(60);
    while landed() < 20 {
        assert!(Instant::now() < deadline, "shard 2 made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "shard 2 ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(landed() < share, "killed too late");
    // The journal in the bucket says the copy started and never finished.
    let out = s3_ferry(&ws, &s3)
        .args(run_args(&finalize_args(3), state, src, dst))
        .run();
    out.code(1).stderr_has("shard 2/3: step copy unfinished");
    assert!(s3.read_file("dst", "_FERRY_DONE").is_none());

    let out = s3_ferry(&ws, &s3)
        .args(run_args(&shard_args(2, 3), state, src, dst))
        .run();
    out.code(0);
    let r = report(&out);
    let (copied, skipped) = (
        r["copied"].as_u64().unwrap(),
        r["skipped"].as_u64().unwrap(),
    );
    assert_eq!(copied + skipped, share, "{r}");
    assert!(
        skipped >= 20,
        "the re-run copied again what the killed run wrote: {r}"
    );
    let puts = puts_per_key(&s3, "dst");
    let stored: Vec<String> = s3
        .list_files("dst")
        .into_iter()
        .filter(|k| !k.starts_with('.'))
        .collect();
    assert_eq!(stored.len(), 300, "{stored:?}");
    let not_stored: Vec<&String> = puts.keys().filter(|k| !stored.contains(k)).collect();
    assert!(
        not_stored.is_empty(),
        "written but not stored: {not_stored:?}"
    );
    // A PUT in flight at the kill may have been stored without the server logging it (the client
    // went away before the answer); the re-run then finds it there and skips it.
    let unlogged: Vec<&String> = stored.iter().filter(|k| !puts.contains_key(*k)).collect();
    assert!(
        unlogged.len() <= 2,
        "stored but never written: {unlogged:?}"
    );
    // At most the objects in flight at the kill are written twice.
    assert!(puts.values().filter(|n| **n > 1).count() <= 2, "{puts:?}");
    s3_ferry(&ws, &s3)
        .args(run_args(&finalize_args(3), state, src, dst))
        .run()
        .code(0);
    assert_eq!(s3.read_file("dst", "_FERRY_DONE").unwrap(), b"300");
}
