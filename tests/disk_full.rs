//! Disk full (issue 22): a `file://` destination and the state dir on a small tmpfs that fills
//! mid-run. ENOSPC must give a clear error naming the path, leave no torn object, journal line or
//! list cache line, and a re-run after the filesystem grows must complete exactly.
//!
//! Needs root (mount -t tmpfs). Without it the tests print SKIPPED, and fail under CI=true.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Workspace;

fn copy_job() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lua/disk_full_copy.lua")
        .display()
        .to_string()
}

/// A tmpfs mounted on a folder for the test's life; unmounted on drop, even when a test panics.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax: "400k") on `dir`, or says why it cannot.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Some(Tmpfs {
                    dir: dir.to_path_buf(),
                });
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => format!("cannot run mount: {e}"),
        };
        let msg = format!("SKIPPED: cannot mount a tmpfs on {} ({why})", dir.display());
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}; under CI these tests must run as root");
        }
        println!("{msg}");
        None
    }

    /// Grows (or shrinks) the mounted filesystem in place; its files stay.
    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(st.success(), "remount {}", self.dir.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// `n` files of 24 KiB each, every byte depending on the file, so a torn copy shows.
fn make_files(dir: &Path, n: usize) {
    for i in 0..n {
        let p = dir.join(format!("d{:02}/obj-{i:05}", i % 7));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let data: Vec<u8> = (0..24 * 1024u32)
            .map(|j| (j.wrapping_mul(31).wrapping_add(i as u32 * 7) % 251) as u8)
            .collect();
        std::fs::write(&p, data).unwrap();
    }
}

/// Relative path → content of every file below `root`; object_store's `#` staging files apart.
fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Every object under its final name in `dst` is byte for byte the source file; returns how many.
fn assert_no_torn_object(src: &Path, dst: &Path) -> usize {
    let mut n = 0;
    for (rel, data) in files(dst) {
        if rel.contains('#') {
            continue;
        }
        let want = std::fs::read(src.join(&rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(
            data == want,
            "{rel} in the destination differs from the source"
        );
        n += 1;
    }
    n
}

fn report(stdout: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("a JSON report line in {stdout}"));
    serde_json::from_str(line).unwrap()
}

fn copy(
    ws: &Workspace,
    src: &Path,
    dst: &Path,
    state: &Path,
    cache: Option<&Path>,
) -> common::Output {
    let mut args = vec![
        "run".to_string(),
        copy_job(),
        "--state".into(),
        state.display().to_string(),
        "-p".into(),
        format!("src=file://{}", src.display()),
        "-p".into(),
        format!("dst=file://{}", dst.display()),
        "-p".into(),
        "concurrency=4".into(),
    ];
    if let Some(c) = cache {
        args.extend(["-p".into(), format!("cache={}", c.display())]);
    }
    ws.ferry().args(args).run()
}

const N: usize = 60;

#[test]
fn a_full_destination_fails_clearly_and_a_rerun_completes_exactly() {
    let ws = Workspace::new();
    let src = ws.join("src");
    make_files(&src, N);
    let Some(fs) = Tmpfs::mount(&ws.join("mnt"), "512k") else {
        return;
    };
    let dst = fs.dir.join("dst");
    let state = ws.join("state");

    let out = copy(&ws, &src, &dst, &state, None);
    out.code(1);
    let r = report(&out.stdout);
    out.stderr_has("No space left on device")
        .stderr_has(&dst.display().to_string());
    let landed = assert_no_torn_object(&src, &dst);
    assert!(
        landed > 0 && landed < N,
        "the tmpfs filled midway: {landed} of {N}"
    );
    assert_eq!(r["copied"].as_u64().unwrap() as usize, landed, "{r}");

    fs.resize("8m");
    let out = copy(&ws, &src, &dst, &state, None);
    out.code(0);
    let r = report(&out.stdout);
    assert_eq!(
        r["skipped"].as_u64().unwrap() as usize,
        landed,
        "nothing copied twice: {r}"
    );
    assert_eq!(r["copied"].as_u64().unwrap() as usize, N - landed, "{r}");
    let got: Vec<_> = files(&dst)
        .into_iter()
        .filter(|(k, _)| !k.contains('#'))
        .collect();
    assert_eq!(got, files(&src), "every file identical after the resume");
    let staging: Vec<_> = files(&dst)
        .into_iter()
        .filter(|(k, _)| k.contains('#'))
        .map(|(k, _)| k)
        .collect();
    assert!(staging.is_empty(), "staging files left behind: {staging:?}");
}
