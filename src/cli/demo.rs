//! `ferry demo`: a real run of the `seafile-migrate` procedure on a generated Seafile storage
//! (UUID library ids, SHA-1 object ids, JSON commits, zlib fs objects, raw blocks, and the stray
//! temporary files a live server leaves), migrated from the filesystem backend into a second
//! filesystem backend, with no server to install.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;

use sha1::{Digest, Sha1};

use super::RunArgs;
use crate::runtime::context::{Mode, RunContext};
use crate::runtime::error::FerryError;
use crate::runtime::output::{self, Verbosity, say};

/// Deterministic pseudo-random bytes (xorshift), so the demo data is the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() & 0xff) as u8).collect()
    }
    fn uuid(&mut self) -> String {
        let h = hex::encode(self.bytes(16));
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}

fn sha1_hex(b: &[u8]) -> String {
    hex::encode(Sha1::digest(b))
}

fn zlib(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).expect("in-memory write");
    e.finish().expect("in-memory write")
}

/// Writes one object at Seafile's filesystem layout: `<type>/<repo>/<id[0:2]>/<id[2:]>`.
fn put(storage: &Path, dtype: &str, repo: &str, id: &str, data: &[u8]) -> std::io::Result<()> {
    let p = storage.join(dtype).join(repo).join(&id[..2]);
    std::fs::create_dir_all(&p)?;
    std::fs::write(p.join(&id[2..]), data)
}

/// What was generated.
pub struct SeafileTree {
    pub conf_dir: PathBuf,
    pub seafile_data: PathBuf,
    pub dest_conf_dir: PathBuf,
    pub dest_storage: PathBuf,
    pub objects: usize,
    pub bytes: u64,
}

/// A small Seafile installation: `conf/seafile.conf` (fs backend, plus [fileserver] and
/// [memcached] sections that must survive the conf replacement), `seafile-data/storage`, and a
/// temporary conf in `new-conf/` pointing at `new-storage/`.
pub fn generate_seafile(
    root: &Path,
    libraries: usize,
    files_per_library: usize,
) -> std::io::Result<SeafileTree> {
    let mut rng = Rng(0x5eaf_11e5_0000_0001);
    let conf_dir = root.join("conf");
    let seafile_data = root.join("seafile-data");
    let storage = seafile_data.join("storage");
    let dest_conf_dir = root.join("new-conf");
    let dest_storage = root.join("new-storage");
    std::fs::create_dir_all(&conf_dir)?;
    std::fs::create_dir_all(&dest_conf_dir)?;
    std::fs::write(
        conf_dir.join("seafile.conf"),
        "[fileserver]\nport = 8082\n\n[memcached]\nmemcached_options = --SERVER=localhost --POOL-MIN=10 --POOL-MAX=100\n\n[quota]\ndefault = 2\n",
    )?;
    let dir = dest_storage.display();
    std::fs::write(
        dest_conf_dir.join("seafile.conf"),
        format!(
            "[commit_object_backend]\nname = fs\ndir = {dir}\n\n[fs_object_backend]\nname = fs\ndir = {dir}\n\n[block_backend]\nname = fs\ndir = {dir}\n"
        ),
    )?;
    let (mut objects, mut bytes) = (0usize, 0u64);
    for _ in 0..libraries {
        let repo = rng.uuid();
        let mut dirents = Vec::new();
        for f in 0..files_per_library {
            let mut block_ids = Vec::new();
            let mut size = 0;
            for _ in 0..(1 + rng.next() % 3) {
                let len = 1024 + (rng.next() % 16) as usize * 1024;
                let data = rng.bytes(len);
                let id = sha1_hex(&data);
                put(&storage, "blocks", &repo, &id, &data)?;
                size += data.len();
                bytes += data.len() as u64;
                objects += 1;
                block_ids.push(id);
            }
            let file_obj =
                serde_json::json!({"block_ids": block_ids, "size": size, "type": 1, "version": 1})
                    .to_string();
            let file_id = sha1_hex(file_obj.as_bytes());
            let stored = zlib(file_obj.as_bytes());
            put(&storage, "fs", &repo, &file_id, &stored)?;
            bytes += stored.len() as u64;
            objects += 1;
            dirents.push(serde_json::json!({"id": file_id, "mode": 33188, "mtime": 1_700_000_000 + f, "name": format!("file-{f}.bin"), "size": size}));
        }
        let dir_obj = serde_json::json!({"dirents": dirents, "type": 3, "version": 1}).to_string();
        let root_id = sha1_hex(dir_obj.as_bytes());
        let stored = zlib(dir_obj.as_bytes());
        put(&storage, "fs", &repo, &root_id, &stored)?;
        bytes += stored.len() as u64;
        objects += 1;
        let mut parent = serde_json::Value::Null;
        for c in 0..3 {
            let id = hex::encode(rng.bytes(20));
            let commit = serde_json::json!({"commit_id": id, "root_id": root_id, "repo_id": repo,
                "creator_name": "demo@example.com", "ctime": 1_700_000_000 + c, "description": format!("change {c}"),
                "parent_id": parent, "version": 1}).to_string();
            put(&storage, "commits", &repo, &id, commit.as_bytes())?;
            bytes += commit.len() as u64;
            objects += 1;
            parent = serde_json::Value::String(id);
        }
        // What a live server leaves behind: a temp file of an interrupted write (skipped).
        let tmp = storage.join("commits").join(&repo).join("ab");
        std::fs::create_dir_all(&tmp)?;
        std::fs::write(tmp.join(format!("{}.Xy12Zq", "c".repeat(38))), b"partial")?;
    }
    Ok(SeafileTree {
        conf_dir,
        seafile_data,
        dest_conf_dir,
        dest_storage,
        objects,
        bytes,
    })
}

pub fn demo(dir: Option<&Path>, generate_only: bool) -> ExitCode {
    let root: PathBuf = match dir {
        Some(d) => std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf()),
        None => std::env::temp_dir().join(format!("ferry-demo-{}", std::process::id())),
    };
    let tree = match generate_seafile(&root, 4, 25) {
        Ok(t) => t,
        Err(e) => {
            return super::fail(&FerryError::io(
                format!("generating demo data in {}", root.display()),
                &e,
            ));
        }
    };
    if generate_only {
        println!("conf_dir={}", tree.conf_dir.display());
        println!("seafile_data={}", tree.seafile_data.display());
        println!("dest_conf_dir={}", tree.dest_conf_dir.display());
        println!("dest_storage={}", tree.dest_storage.display());
        println!("objects={}", tree.objects);
        return ExitCode::SUCCESS;
    }
    let _ = output::init(Verbosity(0), None, "demo");
    say(&format!(
        "ferry demo: a Seafile storage with {} objects ({} bytes) in {}\n\
         migrating it to the backend described in {}/seafile.conf (a second filesystem backend)\n",
        tree.objects,
        tree.bytes,
        tree.seafile_data.display(),
        tree.dest_conf_dir.display()
    ));
    let args = RunArgs {
        name_or_file: "seafile-migrate".into(),
        params: vec![
            format!("conf_dir={}", tree.conf_dir.display()),
            format!("seafile_data={}", tree.seafile_data.display()),
            format!("dest_conf_dir={}", tree.dest_conf_dir.display()),
            format!("object_list={}", root.join("object-list").display()),
            "verify=hash".into(),
        ],
        params_file: None,
        dry_run: false,
        yes: true,
        state: Some(root.join("state")),
        from_step: None,
        fresh: false,
        log_json: None,
        metrics: None,
        shard: None,
        scale: Default::default(),
        verbose: 0,
        quiet: false,
    };
    let (opts, script) = match super::run::build_context(&args, Mode::Run) {
        Ok(x) => x,
        Err(e) => return super::fail(&e),
    };
    let code = super::run::run_context(Rc::new(RunContext::new(opts, script)));
    if code != 0 {
        return ExitCode::from(code);
    }
    say(&format!(
        "\nDone. The new storage is {}; {}/seafile.conf now points at it (the original is kept beside it).\n\
         Run the same command again and every step is skipped: the journal is {}/journal.jsonl.\n\
         Try `ferry help seafile-migrate`, or `ferry eject seafile-migrate` to edit the procedure.",
        tree.dest_storage.display(),
        tree.conf_dir.display(),
        root.join("state").display()
    ));
    ExitCode::SUCCESS
}
