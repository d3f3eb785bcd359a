//! seafile-migrate on generated Seafile storage: fs -> S3 (s3s-fs), S3 -> fs, re-runs that copy
//! nothing, kill -9 and resume, a stale object list, and every configuration it must refuse.

use crate::common;
use crate::seafile_support;

use std::time::{Duration, Instant};

use common::Workspace;
use common::s3::S3Server;
use seafile_support::{Tree, fs_objects, generate, migrate};

fn s3_conf(s3: &S3Server, prefix: &str) -> String {
    seafile_support::s3_sections(
        s3,
        prefix,
        &format!(
            "host = {}\npath_style_request = true\nuse_v4_signature = true\naws_region = us-east-1\n",
            seafile_support::hostport(s3)
        ),
    )
}

#[test]
fn fs_to_s3_and_back_byte_identical_and_rerun_copies_nothing() {
    let s3 = S3Server::start();
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    std::fs::write(tree.dest_conf_dir.join("seafile.conf"), s3_conf(&s3, "sea")).unwrap();
    let original = fs_objects(&tree.seafile_data);
    assert!(original.len() > 300);

    let list = ["-p", "object_list=lists/objs", "--state", "st1"];
    migrate(
        &ws,
        &tree,
        &[&list[..], &["-p", "phase=initial"]].concat(),
        Some(&s3),
    )
    .code(0);
    // A second initial pass (a fresh run, same object lists) has nothing to copy.
    let again = migrate(
        &ws,
        &tree,
        &[&list[..], &["-p", "phase=initial", "--fresh"]].concat(),
        Some(&s3),
    );
    again.code(0);
    assert_eq!(
        again.stderr.matches("copied 0 objects").count(),
        3,
        "{}",
        again.stderr
    );
    migrate(
        &ws,
        &tree,
        &[&list[..], &["-p", "phase=final", "-p", "verify=hash"]].concat(),
        Some(&s3),
    )
    .code(0)
    .stderr_has("content differs 0");
    for (dtype, key, bytes) in &original {
        let got = s3
            .read_file(&format!("sea-{dtype}"), key)
            .unwrap_or_else(|| panic!("{dtype} {key} missing"));
        assert_eq!(&got, bytes, "{dtype} {key}");
    }
    for dtype in ["commits", "fs", "blocks"] {
        let n = original.iter().filter(|o| o.0 == dtype).count();
        assert_eq!(
            s3.list_files(&format!("sea-{dtype}")).len(),
            n,
            "{dtype}: nothing else in the bucket"
        );
    }
    // The object list files are in migrate.py's format: repo_id/obj_id per line.
    let list = ws.read("lists/objs.blocks");
    assert!(
        list.lines()
            .all(|l| l.len() == 36 + 1 + 40 && !l.contains('\t')),
        "{list}"
    );
    // seafile.conf now points at S3, other sections kept.
    let conf = std::fs::read_to_string(tree.conf_dir.join("seafile.conf")).unwrap();
    assert!(conf.contains("bucket = sea-blocks") && conf.contains("[memcached]"));

    // And back: S3 -> a new filesystem backend.
    let back = Workspace::new();
    let t2 = Tree {
        conf_dir: back.join("conf"),
        seafile_data: back.join("unused-data"),
        dest_conf_dir: back.join("new-conf"),
    };
    std::fs::create_dir_all(&t2.conf_dir).unwrap();
    std::fs::create_dir_all(&t2.dest_conf_dir).unwrap();
    std::fs::write(t2.conf_dir.join("seafile.conf"), &conf).unwrap();
    let restored = back.join("restored");
    std::fs::write(
        t2.dest_conf_dir.join("seafile.conf"),
        format!("[commit_object_backend]\nname = fs\ndir = {d}\n[fs_object_backend]\nname = fs\ndir = {d}\n[block_backend]\nname = fs\ndir = {d}\n", d = restored.display()),
    )
    .unwrap();
    migrate(&back, &t2, &["-p", "verify=hash"], Some(&s3)).code(0);
    assert_eq!(
        fs_objects(&restored),
        original,
        "S3 -> fs restores the same tree"
    );
}

#[test]
fn a_killed_migration_resumes_and_finishes() {
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    let list = ws.join("objs");
    let args = vec![
        "run".to_string(),
        "seafile-migrate".into(),
        "--yes".into(),
        "-p".into(),
        format!("conf_dir={}", tree.conf_dir.display()),
        "-p".into(),
        format!("dest_conf_dir={}", tree.dest_conf_dir.display()),
        "-p".into(),
        format!("object_list={}", list.display()),
        "-p".into(),
        "objects_per_second=100".into(),
    ];
    let mut f = ws.ferry().args(&args);
    f.cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = f.cmd.spawn().unwrap();
    let lines = || -> usize {
        ["commits", "fs", "blocks"]
            .iter()
            .map(|t| {
                std::fs::read_to_string(format!("{}.{t}", list.display()))
                    .map(|s| s.lines().count())
                    .unwrap_or(0)
            })
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines() < 150 {
        assert!(Instant::now() < deadline, "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let landed = lines();
    // The same command (minus the slow-down) resumes and finishes; verify proves nothing is lost.
    let mut resume = args.clone();
    resume.truncate(resume.len() - 2);
    resume.extend(["-p".into(), "verify=hash".into()]);
    let out = ws.ferry().args(&resume).run();
    out.code(0).stderr_has("content differs 0");
    // The initial pass of the resumed run copies exactly what had not landed.
    let copied: usize = out
        .stderr
        .lines()
        .filter(|l| l.contains("Complete migrate"))
        .take(3)
        .map(|l| {
            l.split(": ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    let total = fs_objects(&tree.seafile_data).len();
    assert!(landed < total);
    assert_eq!(
        copied,
        total - landed,
        "objects copied again after the kill"
    );
    assert_eq!(
        fs_objects(&ws.join("site/new-storage")),
        fs_objects(&tree.seafile_data)
    );
}

#[test]
fn a_stale_object_list_is_caught_by_verification() {
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    let list = ws.join("objs");
    let base = ["-p".to_string(), format!("object_list={}", list.display())];
    migrate(
        &ws,
        &tree,
        &[&base[0], &base[1], "-p", "phase=initial"],
        None,
    )
    .code(0);
    // Someone empties the destination; the list files still claim everything is there.
    std::fs::remove_dir_all(ws.join("site/new-storage/storage/blocks")).unwrap();
    let out = migrate(&ws, &tree, &[&base[0], &base[1], "-p", "phase=final"], None);
    out.code(1)
        .stderr_has("missing at the destination")
        .stderr_has("it is stale")
        .stderr_has("--from-step final-migration");
    for t in ["commits", "fs", "blocks"] {
        std::fs::remove_file(format!("{}.{t}", list.display())).unwrap();
    }
    migrate(
        &ws,
        &tree,
        &[
            &base[0],
            &base[1],
            "-p",
            "phase=final",
            "--from-step",
            "final-migration",
        ],
        None,
    )
    .code(0);
    assert_eq!(
        fs_objects(&ws.join("site/new-storage")),
        fs_objects(&tree.seafile_data)
    );
}

#[test]
fn configurations_that_cannot_work_are_refused_with_the_reason() {
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    let cases: &[(&str, &str, &str)] = &[
        (
            "[store_crypt]\nkey_path = /etc/key\n",
            "",
            "storage encryption",
        ),
        (
            "",
            "[commit_object_backend]\nname = ceph\nceph_config = /etc/ceph/ceph.conf\npool = x\n[fs_object_backend]\nname = ceph\npool = y\n[block_backend]\nname = ceph\npool = z\n",
            "Ceph RADOS",
        ),
        (
            "",
            "[commit_object_backend]\nname = swift\ncontainer = c\n[fs_object_backend]\nname = swift\ncontainer = f\n[block_backend]\nname = swift\ncontainer = b\n",
            "Swift cannot be a destination",
        ),
        (
            "",
            "[commit_object_backend]\nname = s3\nbucket = aaa\nkey_id = k\nkey = s\n[fs_object_backend]\nname = s3\nbucket = bbb\n[block_backend]\nname = s3\nbucket = ccc\n",
            "needs `host`",
        ),
        (
            "",
            "[commit_object_backend]\nname = gluster\n[fs_object_backend]\nname = fs\n[block_backend]\nname = fs\n",
            "unknown backend name 'gluster'",
        ),
        (
            "",
            "[block_backend]\nname = fs\ndir = /tmp/elsewhere\n",
            "has no [commit_object_backend] section",
        ),
        (
            "",
            "[commit_object_backend]\nname = fs\n[fs_object_backend]\nname = fs\n[block_backend]\nname = fs\n",
            "same storage",
        ),
    ];
    let original = std::fs::read_to_string(tree.conf_dir.join("seafile.conf")).unwrap();
    for (orig_extra, dest, expect) in cases {
        std::fs::write(
            tree.conf_dir.join("seafile.conf"),
            format!("{original}\n{orig_extra}"),
        )
        .unwrap();
        if !dest.is_empty() {
            std::fs::write(tree.dest_conf_dir.join("seafile.conf"), dest).unwrap();
        }
        let out = migrate(&ws, &tree, &["--fresh"], None);
        out.code(1).stderr_has(expect).stderr_has("read-config");
        assert!(
            !ws.join("site/new-storage").exists(),
            "{expect}: something was copied"
        );
    }
}
