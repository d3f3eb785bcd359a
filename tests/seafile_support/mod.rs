//! Shared by the seafile-migrate tests: a generated Seafile site (`ferry demo --generate-only`),
//! its objects as stored on disk, seafile.conf sections for the s3s server, and a runner.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use crate::common::s3::{S3Server, UNSET_ENV};
use crate::common::{Output, Workspace};

pub const TYPES: [(&str, &str); 3] = [
    ("commits", "commit_object_backend"),
    ("fs", "fs_object_backend"),
    ("blocks", "block_backend"),
];

pub struct Tree {
    pub conf_dir: PathBuf,
    pub seafile_data: PathBuf,
    pub dest_conf_dir: PathBuf,
}

pub fn generate(ws: &Workspace, dir: &str) -> Tree {
    let out = ws
        .ferry()
        .args(["demo", "--generate-only", "--dir", dir])
        .run();
    out.code(0);
    let get = |k: &str| {
        PathBuf::from(
            out.stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .expect(k),
        )
    };
    Tree {
        conf_dir: get("conf_dir"),
        seafile_data: get("seafile_data"),
        dest_conf_dir: get("dest_conf_dir"),
    }
}

/// Every valid object of the fs storage at `root/storage`, as (type, "repo/objid", bytes).
pub fn fs_objects(root: &Path) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (dtype, _) in TYPES {
        for (key, path) in fs_object_paths(root, dtype) {
            out.push((dtype.to_string(), key, std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

/// ("repo/objid", file path) of the valid objects of one type under `root/storage/<dtype>`.
pub fn fs_object_paths(root: &Path, dtype: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(repos) = std::fs::read_dir(root.join("storage").join(dtype)) else {
        return out;
    };
    for repo in repos {
        let repo = repo.unwrap().path();
        for ab in std::fs::read_dir(&repo).unwrap() {
            let ab = ab.unwrap().path();
            for f in std::fs::read_dir(&ab).unwrap() {
                let f = f.unwrap().path();
                let rest = f.file_name().unwrap().to_string_lossy().into_owned();
                if rest.len() != 38 {
                    continue;
                }
                let key = format!(
                    "{}/{}{}",
                    repo.file_name().unwrap().to_string_lossy(),
                    ab.file_name().unwrap().to_string_lossy(),
                    rest
                );
                out.push((key, f));
            }
        }
    }
    out.sort();
    out
}

/// The three backend sections for buckets `<prefix>-<type>` of `s3` (created here), each with
/// the given lines (`host = ...`, `path_style_request = ...`) after name, bucket and keys.
pub fn s3_sections(s3: &S3Server, prefix: &str, lines: &str) -> String {
    let mut conf = String::new();
    for (dtype, section) in TYPES {
        let bucket = format!("{prefix}-{dtype}");
        s3.create_bucket(&bucket);
        conf.push_str(&format!(
            "[{section}]\nname = s3\nbucket = {bucket}\nkey_id = {}\nkey = {}\n{lines}\n",
            s3.access_key, s3.secret_key
        ));
    }
    conf
}

/// `host:port` of the server (`127.0.0.1:PORT`).
pub fn hostport(s3: &S3Server) -> String {
    s3.endpoint.trim_start_matches("http://").to_string()
}

/// Runs seafile-migrate on `tree` with `extra` arguments. With `s3`, the child gets the
/// server's AWS_* environment; otherwise only the machine's AWS settings are removed (keys then
/// come from seafile.conf alone, as seafobj takes them).
pub fn migrate(ws: &Workspace, tree: &Tree, extra: &[&str], s3: Option<&S3Server>) -> Output {
    migrate_env(ws, tree, extra, s3, &[])
}

/// [`migrate`] with `env` set in the child after the machine's AWS and proxy settings are
/// removed (e.g. `AWS_DEFAULT_REGION`, or `HTTP_PROXY` to capture requests).
pub fn migrate_env(
    ws: &Workspace,
    tree: &Tree,
    extra: &[&str],
    s3: Option<&S3Server>,
    env: &[(&str, &str)],
) -> Output {
    let mut args = vec![
        "run".to_string(),
        "seafile-migrate".into(),
        "--yes".into(),
        "-p".into(),
        format!("conf_dir={}", tree.conf_dir.display()),
        "-p".into(),
        format!("seafile_data={}", tree.seafile_data.display()),
        "-p".into(),
        format!("dest_conf_dir={}", tree.dest_conf_dir.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut f = ws.ferry().args(args);
    for k in UNSET_ENV {
        f.cmd.env_remove(k);
    }
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
    ] {
        f.cmd.env_remove(k);
    }
    for k in ["NO_PROXY", "no_proxy"] {
        f.cmd.env_remove(k);
    }
    if let Some(s3) = s3 {
        s3.apply_env(&mut f.cmd);
    }
    for (k, v) in env {
        f.cmd.env(k, v);
    }
    f.run()
}

/// A tree whose current seafile.conf is `conf` and whose temporary one is `dest_conf`.
pub fn conf_tree(ws: &Workspace, name: &str, conf: &str, dest_conf: &str) -> Tree {
    let t = Tree {
        conf_dir: ws.join(&format!("{name}/conf")),
        seafile_data: ws.join(&format!("{name}/seafile-data")),
        dest_conf_dir: ws.join(&format!("{name}/new-conf")),
    };
    std::fs::create_dir_all(&t.conf_dir).unwrap();
    std::fs::create_dir_all(&t.dest_conf_dir).unwrap();
    std::fs::write(t.conf_dir.join("seafile.conf"), conf).unwrap();
    std::fs::write(t.dest_conf_dir.join("seafile.conf"), dest_conf).unwrap();
    t
}

/// Three fs sections pointing at `dir`.
pub fn fs_sections(dir: &Path) -> String {
    TYPES
        .iter()
        .map(|(_, s)| format!("[{s}]\nname = fs\ndir = {}\n", dir.display()))
        .collect()
}

/// A plain-HTTP forward proxy that records the head of every request it receives (request line
/// and headers, as sent by the client) and answers each with S3's 403 AccessDenied. Pointing a
/// child's `HTTP_PROXY` at it shows the absolute URL (so the endpoint host) and the signature
/// scope ferry would send to a server this machine cannot reach (Alibaba OSS, say).
pub struct CaptureProxy {
    pub url: String,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl CaptureProxy {
    pub fn start() -> CaptureProxy {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                                <Message>captured by the test proxy</Message></Error>";
                    let _ = write!(
                        conn,
                        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        CaptureProxy { url, heads }
    }

    /// The request heads received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}
