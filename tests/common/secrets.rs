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
