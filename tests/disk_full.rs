//! Disk full (issue 22): a `file://` destination and the state dir on a small tmpfs that fills
//! mid-run. ENOSPC must give a clear error naming the path, leave no torn object, journal line or
//! list cache line, and a re-run after the filesystem grows must complete exactly.
//!
//! Needs root (mount -t tmpfs). Without it the tests print SKIPPED, and fail under CI=true.

use crate::common;

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
    let r = common::json_report(&out.stdout);
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
    let r = common::json_report(&out.stdout);
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

/// Fills `dir` with a filler file, then frees `free` bytes of it.
fn fill_leaving(dir: &Path, free: u64) {
    use std::io::Write;
    let p = dir.join("filler");
    let mut f = std::fs::File::create(&p).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(free)).unwrap();
}

/// Every line of `path` is whole: it parses with `ok`, and the file ends with a newline.
fn assert_whole_lines(path: &Path, ok: impl Fn(&str) -> bool) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends in a torn line",
        path.display()
    );
    for l in text.lines() {
        assert!(ok(l), "torn line kept in {}: {l:?}", path.display());
    }
    text.lines().count()
}

#[test]
fn a_full_state_dir_keeps_journal_and_list_cache_whole_and_resumes_exactly() {
    let ws = Workspace::new();
    let src = ws.join("src");
    for i in 0..800 {
        ws.write(
            &format!("src/k{:02}/object-with-a-long-name-{i:06}", i % 9),
            &format!("v{i}"),
        );
    }
    let Some(fs) = Tmpfs::mount(&ws.join("mnt"), "1m") else {
        return;
    };
    let state = fs.dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    fill_leaving(&fs.dir, 12 * 1024);
    let cache = state.join("dst.cache");
    let dst = ws.join("dst");

    let out = copy(&ws, &src, &dst, &state, Some(&cache));
    out.code(1)
        .stderr_has("No space left on device")
        .stderr_has(&state.display().to_string());
    let journal = state.join("journal.jsonl");
    assert_whole_lines(&journal, |l| {
        serde_json::from_str::<serde_json::Value>(l).is_ok()
    });
    let cached = assert_whole_lines(&cache, |l| {
        l.rsplit_once('\t').is_some_and(|(k, s)| {
            s.parse::<u64>().is_ok()
                && std::fs::read(src.join(k)).is_ok_and(|d| d.len().to_string() == s)
        })
    });
    assert!(cached < 800, "the state dir filled midway: {cached} cached");

    std::fs::remove_file(fs.dir.join("filler")).unwrap();
    fs.resize("8m");
    let out = copy(&ws, &src, &dst, &state, Some(&cache));
    out.code(0);
    assert_eq!(
        files(&dst),
        files(&src),
        "every file identical after the resume"
    );
    let all = assert_whole_lines(&cache, |l| l.contains('\t'));
    assert_eq!(all, 800, "every key once in the list cache");
    assert_whole_lines(&journal, |l| {
        serde_json::from_str::<serde_json::Value>(l).is_ok()
    });
}
