//! The secrets check: none of the secrets a run was given may appear in any output channel:
//! stdout, stderr, the `--log-json` events, the journal and every other state file, and
//! `ferry status`. Also looked for: each secret percent-encoded and base64-encoded, as they
//! travel in URLs and headers.

use std::path::Path;

use base64::Engine;

fn forms(secret: &str) -> Vec<String> {
    let mut v = vec![secret.to_string()];
    let pct: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    if pct != secret {
        v.push(pct);
    }
    v.push(base64::engine::general_purpose::STANDARD.encode(secret));
    v
}

fn scan_text(what: &str, text: &str, secrets: &[&str], found: &mut Vec<String>) {
    for s in secrets {
        for f in forms(s) {
            if text.contains(&f) {
                found.push(format!("{what} contains the secret {s:?} (as {f:?})"));
            }
        }
    }
}

fn scan_path(path: &Path, secrets: &[&str], found: &mut Vec<String>, files: &mut usize) {
    if path.is_dir() {
        let Ok(rd) = std::fs::read_dir(path) else {
            return;
        };
        for e in rd.flatten() {
            scan_path(&e.path(), secrets, found, files);
        }
    } else if let Ok(bytes) = std::fs::read(path) {
        *files += 1;
        scan_text(
            &path.display().to_string(),
            &String::from_utf8_lossy(&bytes),
            secrets,
            found,
        );
    }
}

/// Asserts that no secret (of at least 6 characters: shorter ones would match by chance) is in
/// `texts` (name, content) or in any file under `paths`. Returns how many files were read, so a
/// caller can assert the channels it meant to check exist.
pub fn assert_absent(secrets: &[&str], texts: &[(&str, &str)], paths: &[&Path]) -> usize {
    for s in secrets {
        assert!(s.len() >= 6, "secret {s:?} too short to search for");
    }
    let mut found = Vec::new();
    for (name, t) in texts {
        scan_text(name, t, secrets, &mut found);
    }
    let mut files = 0;
    for p in paths {
        assert!(
            p.exists(),
            "{} was meant to be checked but does not exist",
            p.display()
        );
        scan_path(p, secrets, &mut found, &mut files);
    }
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
    files
}

/// The whole check for a procedure run in `ws` (default state dir `ws/.ferry/state`): `out`'s
/// stdout and stderr, the `--log-json` file `events` (which must exist), every state file, and
/// `ferry status` (text and `--json`) of every procedure's state dir there.
pub fn assert_run_keeps_secrets(
    secrets: &[&str],
    out: &super::Output,
    ws: &Path,
    events: &Path,
    state_root: Option<&Path>,
) {
    let default_root = ws.join(".ferry/state");
    let root = state_root.unwrap_or(&default_root);
    let mut texts = vec![
        ("stdout", out.stdout.clone()),
        ("stderr", out.stderr.clone()),
    ];
    let mut states = 0;
    for e in std::fs::read_dir(root).expect("state root").flatten() {
        let dir = e.path();
        if !dir.is_dir() {
            continue;
        }
        states += 1;
        for json in [false, true] {
            let mut f = super::Ferry::new();
            f.cmd.current_dir(ws).arg("status").arg("--state").arg(&dir);
            if json {
                f.cmd.arg("--json");
            }
            let o = f.run();
            assert_eq!(o.code, 0, "ferry status {}: {}", dir.display(), o.stderr);
            texts.push(("ferry status", o.stdout + &o.stderr));
        }
    }
    assert!(states > 0, "no state dir under {}", root.display());
    let refs: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let files = assert_absent(secrets, &refs, &[root, events]);
    assert!(files >= 2, "only {files} state/log file(s) were read");
}
