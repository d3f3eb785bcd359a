//! Rebuild when a bundled script or Lua module changes: `include_dir!` embeds `scripts/` and `lua/`
//! but cannot tell cargo to watch them on stable Rust.
//!
//! `FERRY_GIT_COMMIT` for `--version`: `git rev-parse --short HEAD` when built in a git checkout,
//! else "unknown" (a source tarball, or no git). Rebuilt when HEAD moves: .git/HEAD (a checkout
//! or branch switch) and the ref it names (a commit); in a worktree `.git` is a file, so the paths
//! are asked of git (`--git-path`).
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=scripts");
    println!("cargo:rerun-if-changed=lua");
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FERRY_GIT_COMMIT={commit}");
    let mut watched = vec![".git/HEAD".to_string()];
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        watched.push(head);
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.extend(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.extend(git(&["rev-parse", "--git-path", "packed-refs"]));
    watched.sort();
    watched.dedup();
    // Only paths that exist: a missing one would make cargo rerun this script on every build.
    for path in watched {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
