//! seafile-migrate and seafile.conf as Seafile reads it: configparser booleans and option names
//! (haiwen/seafobj seafobj/objstore_factory.py uses `configparser.ConfigParser` and
//! `getboolean`), storage classes, replace-conf after `types`/`repo`, and filesystem
//! destinations written like seaf-server writes objects (haiwen/seafile-server
//! common/obj-backend-fs.c `save_obj_contents`: 0600 temp file, fsync, rename, fsync of the
//! folder).

use crate::common;
use crate::seafile_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::Workspace;
use common::s3::S3Server;
use seafile_support::{
    TYPES, conf_tree, fs_object_paths, fs_objects, fs_sections, generate, hostport, migrate,
};

#[test]
fn booleans_and_option_names_as_configparser_reads_them() {
    let s3 = S3Server::start();
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    let original = fs_objects(&tree.seafile_data);
    // `path_style_request = Yes` is true for configparser: path-style on localhost.
    let conf = seafile_support::s3_sections(
        &s3,
        "ps",
        &format!(
            "Host = localhost:{}\nPath_Style_Request = Yes\nuse_v4_signature = on\n",
            s3.addr.port()
        ),
    );
    std::fs::write(tree.dest_conf_dir.join("seafile.conf"), &conf).unwrap();
    migrate(&ws, &tree, &[], None).code(0);
    for (dtype, key, bytes) in &original {
        assert_eq!(
            s3.read_file(&format!("ps-{dtype}"), key).as_ref(),
            Some(bytes)
        );
    }
    let hosts: std::collections::BTreeSet<String> =
        s3.signed_requests().into_iter().map(|r| r.host).collect();
    assert_eq!(
        hosts.into_iter().collect::<Vec<_>>(),
        vec![format!("localhost:{}", s3.addr.port())]
    );

    // `use_https = TRUE` means HTTPS: against this plain-HTTP server the TLS handshake fails
    // when the stores are opened, and nothing is copied.
    let ws2 = Workspace::new();
    let https = seafile_support::s3_sections(
        &s3,
        "tls",
        &format!(
            "host = {}\npath_style_request = true\nuse_https = TRUE\n",
            hostport(&s3)
        ),
    );
    let t = conf_tree(&ws2, "t", &fs_sections(&tree.seafile_data), &https);
    let before = s3.signed_requests().len();
    migrate(&ws2, &t, &[], None)
        .code(1)
        .stderr_has("read-config")
        .stderr_has(&format!("https://{}", hostport(&s3)));
    assert_eq!(s3.signed_requests().len(), before, "no request over HTTP");
    assert!(s3.list_files("tls-blocks").is_empty());
}

#[test]
fn configurations_seafile_reads_otherwise_are_refused() {
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    let original = std::fs::read_to_string(tree.conf_dir.join("seafile.conf")).unwrap();
    let new_storage = ws.join("site/new-storage").display().to_string();
    let cases: &[(&str, &str, &str)] = &[
        (
            "[storage]\nenable_storage_classes = True\nstorage_classes_file = /opt/seafile/conf/classes.json\n",
            "",
            "enable_storage_classes = True",
        ),
        (
            "",
            "[storage]\nenable_storage_classes = true\n",
            "ignores the [commit_object_backend]",
        ),
        (
            "",
            "[block_backend]\nname = s3\nbucket = bbb\nhost = h:1\nuse_https = maybe\n",
            "use_https = maybe is not a boolean as configparser reads it",
        ),
        (
            "",
            "[block_backend]\nname = fs\nName = s3\n",
            "DuplicateOptionError",
        ),
        (
            "",
            "[block_backend]\nname = fs\n[block_backend]\nname = s3\n",
            "DuplicateSectionError",
        ),
        (
            "",
            "[block_backend]\nname = s3\nbucket = bbb\nhost = http://h:1\n",
            "is not host[:port]",
        ),
        (
            "",
            "[block_backend]\nname = s3\nbucket = bbb\nkey = 5%off\nhost = h:1\n",
            "InterpolationSyntaxError",
        ),
    ];
    for (orig_extra, dest_extra, expect) in cases {
        std::fs::write(
            tree.conf_dir.join("seafile.conf"),
            format!("{original}\n{orig_extra}"),
        )
        .unwrap();
        // The temporary conf: the case's sections, fs sections for the other types.
        let mut dest = dest_extra.to_string();
        for (_, section) in TYPES {
            if !dest_extra.contains(&format!("[{section}]")) {
                dest.push_str(&format!("[{section}]\nname = fs\ndir = {new_storage}\n"));
            }
        }
        std::fs::write(tree.dest_conf_dir.join("seafile.conf"), dest).unwrap();
        // Refused while reading the confs (before any step) or at read-config: nothing copied.
        let out = migrate(&ws, &tree, &["--fresh"], None);
        out.code(1)
            .stderr_has(expect)
            .stderr_lacks("initial-migration");
        assert!(
            fs_objects(&ws.join("site/new-storage")).is_empty(),
            "{expect}: something was copied"
        );
    }
}

fn repo_ids(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("storage/commits"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn replace_conf_switches_only_the_migrated_types_and_never_for_one_library() {
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    let before = std::fs::read_to_string(tree.conf_dir.join("seafile.conf")).unwrap();
    let out = migrate(&ws, &tree, &["-p", "types=blocks"], None);
    out.code(0);
    let after = std::fs::read_to_string(tree.conf_dir.join("seafile.conf")).unwrap();
    assert!(after.starts_with(&before), "{after}");
    let added = &after[before.len()..];
    assert!(
        added.contains("[block_backend]") && added.contains("new-storage"),
        "{after}"
    );
    assert!(
        !after.contains("[commit_object_backend]") && !after.contains("[fs_object_backend]"),
        "commits and fs still live in seafile-data, the conf must say so: {after}"
    );
    out.stderr_has("only [blocks] replaced");

    let ws2 = Workspace::new();
    let tree2 = generate(&ws2, "site");
    let repo = repo_ids(&tree2.seafile_data).remove(0);
    let before = std::fs::read_to_string(tree2.conf_dir.join("seafile.conf")).unwrap();
    migrate(&ws2, &tree2, &["-p", &format!("repo={repo}")], None)
        .code(0)
        .stderr_has("seafile.conf is left as it is")
        .stderr_has("migrate-repo.sh");
    assert_eq!(
        std::fs::read_to_string(tree2.conf_dir.join("seafile.conf")).unwrap(),
        before
    );
    // The library itself was copied.
    let moved = fs_objects(&ws2.join("site/new-storage"));
    assert!(!moved.is_empty() && moved.iter().all(|o| o.1.starts_with(&repo)));
}

/// One syscall of an `strace -f -y` log: where it started and where it returned.
struct Call {
    start: usize,
    end: usize,
    text: String,
}

fn calls(trace: &str) -> Vec<Call> {
    let mut out = Vec::new();
    let mut pending: std::collections::HashMap<String, (usize, String)> = Default::default();
    for (i, line) in trace.lines().enumerate() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.ends_with("<unfinished ...>") {
            pending.insert(pid.to_string(), (i, rest.to_string()));
        } else if rest.starts_with("<...") {
            if let Some((start, text)) = pending.remove(pid) {
                out.push(Call {
                    start,
                    end: i,
                    text,
                });
            }
        } else {
            out.push(Call {
                start: i,
                end: i,
                text: rest.to_string(),
            });
        }
    }
    out
}

/// Every object file under `root/storage/<type>` for the given types, with its mode bits.
fn object_modes(root: &Path, types: &[&str]) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for dtype in types {
        for (_, path) in fs_object_paths(root, dtype) {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            out.push((path.display().to_string(), mode));
        }
    }
    out
}

#[test]
fn filesystem_destination_objects_are_0600() {
    // seaf-server creates each object as a g_mkstemp temp file (haiwen/seafile-server
    // common/obj-backend-fs.c save_obj_contents), which glib opens 0600 (glib/gfileutils.c
    // g_mkstemp: g_mkstemp_full (tmpl, O_RDWR | O_BINARY, 0600)), then renames into place.
    // Under umask 022 (set here, inherited by ferry) a plain create would give 0644.
    // SAFETY: umask only swaps the process's file-creation mask; 022 is the usual default, so
    // the other tests of this binary create their files as they would anyway.
    unsafe {
        libc::umask(0o022);
    }
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    migrate(&ws, &tree, &["-p", "phase=initial"], None).code(0);
    let dest = ws.join("site/new-storage");
    let modes = object_modes(&dest, &["commits", "fs", "blocks"]);
    assert!(modes.len() > 50, "{}", modes.len());
    for (path, mode) in &modes {
        assert_eq!(*mode, 0o600, "{path} is {mode:o} (seaf-server writes 0600)");
    }
    // fsync=false turns the flushes off; the mode stays.
    let ws2 = Workspace::new();
    let tree2 = generate(&ws2, "site");
    migrate(
        &ws2,
        &tree2,
        &["-p", "phase=initial", "-p", "fsync=false"],
        None,
    )
    .code(0);
    let modes = object_modes(&ws2.join("site/new-storage"), &["blocks"]);
    assert!(!modes.is_empty());
    assert!(modes.iter().all(|(_, m)| *m == 0o600), "{modes:?}");
}

/// True when strace runs; otherwise SKIPPED, or a failure under CI=true (tests/setup/strace.sh
/// installs it there or fails).
fn strace_or_skip(test: &str) -> bool {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_ok()
    {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: strace is not installed and CI=true (tests/setup/strace.sh installs it)");
    }
    println!("SKIPPED: {test}: strace is not installed (tests/setup/strace.sh installs it)");
    false
}

#[test]
fn filesystem_destinations_are_durable_before_the_list_records_them() {
    if !strace_or_skip("filesystem_destinations_are_durable_before_the_list_records_them") {
        return;
    }
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    let list = ws.join("objs");
    let trace = ws.join("trace.txt");
    let bin = env!("CARGO_BIN_EXE_ferry");
    let out = std::process::Command::new("strace")
        .args(["-f", "-y", "-s", "4096", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=openat,fsync,fdatasync,rename,renameat,renameat2,write",
        ])
        .arg(bin)
        .current_dir(ws.path())
        .env("FERRY_NO_BARS", "1")
        .args(["run", "seafile-migrate", "--yes", "--state"])
        .arg(ws.join("state"))
        .arg("-p")
        .arg(format!("conf_dir={}", tree.conf_dir.display()))
        .arg("-p")
        .arg(format!("dest_conf_dir={}", tree.dest_conf_dir.display()))
        .arg("-p")
        .arg(format!("object_list={}", list.display()))
        .args(["-p", "phase=initial", "-p", "types=commits,fs"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dest = ws.join("site/new-storage");
    let trace = std::fs::read_to_string(&trace).unwrap();
    let calls = calls(&trace);
    let find = |from: usize, pred: &dyn Fn(&str) -> bool| -> Option<&Call> {
        calls.iter().find(|c| c.start >= from && pred(&c.text))
    };
    let mut checked = 0;
    for (dtype, _) in TYPES.iter().take(2) {
        let list_file = format!("{}.{dtype}", list.display());
        let listed = std::fs::read_to_string(&list_file).unwrap();
        for (key, path) in fs_object_paths(&dest, dtype) {
            assert!(listed.contains(&key), "{key} not in {list_file}");
            let p = path.display().to_string();
            let staged = format!("{p}#");
            // The temp file is flushed, renamed into place, the folder flushed, and only then
            // is the key appended to the object list.
            let file_sync = find(0, &|t| t.starts_with("fsync(") && t.contains(&staged))
                .unwrap_or_else(|| panic!("no fsync of the temp file of {p}"));
            let rename = find(file_sync.end, &|t| {
                t.starts_with("rename") && t.contains(&staged) && t.contains(&format!("\"{p}\""))
            })
            .unwrap_or_else(|| panic!("no rename into {p} after its fsync"));
            let dir = Path::new(&p).parent().unwrap().display().to_string();
            let dir_sync = find(rename.end, &|t| {
                t.starts_with("fsync(") && t.contains(&format!("<{dir}>"))
            })
            .unwrap_or_else(|| panic!("no fsync of {dir} after the rename of {p}"));
            let record = find(0, &|t| {
                t.starts_with("write(") && t.contains(&list_file) && t.contains(&key)
            })
            .unwrap_or_else(|| panic!("no write of {key} to {list_file}"));
            assert!(
                record.start > dir_sync.end,
                "{key} recorded in the list before its folder was flushed"
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");

    // fsync=false turns the flushes off.
    let ws2 = Workspace::new();
    let tree2 = generate(&ws2, "site");
    let trace2 = ws2.join("trace.txt");
    let out = std::process::Command::new("strace")
        .args(["-f", "-y", "-o"])
        .arg(&trace2)
        .args(["-e", "trace=fsync,fdatasync"])
        .arg(bin)
        .current_dir(ws2.path())
        .env("FERRY_NO_BARS", "1")
        .args(["run", "seafile-migrate", "--yes", "--state"])
        .arg(ws2.join("state"))
        .arg("-p")
        .arg(format!("conf_dir={}", tree2.conf_dir.display()))
        .arg("-p")
        .arg(format!("dest_conf_dir={}", tree2.dest_conf_dir.display()))
        .args(["-p", "phase=initial", "-p", "fsync=false"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let dest2 = ws2.join("site/new-storage").display().to_string();
    let t2 = std::fs::read_to_string(&trace2).unwrap();
    assert!(
        !t2.lines().any(|l| l.contains(&dest2)),
        "fsync=false still flushed"
    );
}
