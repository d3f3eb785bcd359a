//! The harness shared by the astra-sideloader test files: a Cassandra-like site for the nodetool
//! double, the `ferry run astra-sideloader` command, and checks of the migration directory.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::common::astra::{self, Config, DevOpsApi, LiveFile, Upload};
use crate::common::s3::{S3Server, UNSET_ENV};
use crate::common::{self, Output, Workspace};

/// Short (see `common::astra`: s3s-fs file names).
pub const SNAP: &str = "sl1";
pub const NODES: &[&str] = &["dse0", "dse1"];

pub struct Site {
    pub ws: Workspace,
    pub root: PathBuf,
    pub live: Vec<LiveFile>,
}

pub fn site(big_data: usize) -> Site {
    let ws = Workspace::new();
    let root = ws.join("cluster");
    let live = astra::cluster(&root, NODES, big_data);
    Site { ws, root, live }
}

/// `ferry run astra-sideloader` with the parameters every test shares (the token as the docs'
/// `$token` variable) plus `extra`.
pub fn command(
    site: &Site,
    api: &DevOpsApi,
    s3: Option<&S3Server>,
    extra: &[&str],
) -> common::Ferry {
    command_yes(site, api, s3, extra, true)
}

pub fn command_yes(
    site: &Site,
    api: &DevOpsApi,
    s3: Option<&S3Server>,
    extra: &[&str],
    yes: bool,
) -> common::Ferry {
    let data_dirs = format!(
        "data_dirs={0}/{{node}}/data1,{0}/{{node}}/data2",
        site.root.display()
    );
    // The nodetool double on PATH, reached as the docs' `nodetool -h NODE` would be.
    let nodetool = "nodetool=nodetool -h {node}".to_string();
    let mut args: Vec<String> = vec!["run".into(), "astra-sideloader".into()];
    if yes {
        args.push("--yes".into());
    }
    for p in [
        format!("db_id={}", api.db_id()),
        format!("api_url={}", api.url()),
        format!("snapshot={SNAP}"),
        format!("node={}", NODES.join(",")),
        nodetool,
        data_dirs,
        "keyspaces=smart_home,catalog".to_string(),
        "poll_interval=0.2s".to_string(),
    ] {
        args.push("-p".into());
        args.push(p);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let path = format!(
        "{}:{}",
        astra::nodetool().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut f = site
        .ws
        .ferry()
        .args(args)
        .env("PATH", &path)
        .env("token", &api.token())
        .env("FERRY_NODETOOL_ROOT", site.root.to_str().unwrap())
        .env(
            "FERRY_NODETOOL_LOG",
            site.ws.join("nodetool.log").to_str().unwrap(),
        );
    for k in UNSET_ENV {
        f.cmd.env_remove(k);
    }
    for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        f.cmd.env_remove(k);
    }
    if let Some(s3) = s3 {
        // Only where the bucket is: the keys come from the API.
        f.cmd
            .env("AWS_ENDPOINT_URL", &s3.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_REGION", common::s3::REGION);
    }
    f
}

pub fn run(site: &Site, api: &DevOpsApi, s3: Option<&S3Server>, extra: &[&str]) -> Output {
    command(site, api, s3, extra).run()
}

/// The live file's bytes.
pub fn live_bytes(site: &Site, f: &LiveFile) -> Vec<u8> {
    std::fs::read(
        site.root
            .join(&f.node)
            .join(format!("data{}", f.data_dir + 1))
            .join(&f.rel),
    )
    .unwrap()
}

/// Every SSTable of the migrated keyspaces is in the migration directory under
/// `<node>/<ks>/<table dir>/snapshots/<snap>/`, byte for byte; nothing else is there but each
/// table's schema.cql and manifest.json; no secondary index or system table was uploaded.
pub fn check_upload(site: &Site, listed: &BTreeMap<String, Vec<u8>>) {
    let mut want = BTreeMap::new();
    for (key, _) in astra::expected_keys(&site.live, SNAP, &["smart_home", "catalog"]) {
        want.insert(key, ());
    }
    for f in &site.live {
        let mut parts = f.rel.splitn(3, '/');
        let (ks, tdir, file) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let key = format!("{}/{ks}/{tdir}/snapshots/{SNAP}/{file}", f.node);
        if want.contains_key(&key) {
            assert_eq!(
                listed.get(&key).map(|b| b.as_slice()),
                Some(live_bytes(site, f).as_slice()),
                "{key} missing or different"
            );
        }
    }
    for key in listed.keys() {
        assert!(!key.contains("//"), "double slash in {key}");
        assert!(
            !key.contains("/.roomidx"),
            "secondary index uploaded: {key}"
        );
        assert!(!key.contains("/system/"), "system table uploaded: {key}");
        let extra = key.ends_with("/schema.cql") || key.ends_with("/manifest.json");
        assert!(want.contains_key(key) || extra, "unexpected object {key}");
    }
    for node in NODES {
        for t in [astra::SENSOR_DIR, astra::ROOMS_DIR, astra::JOURNAL_DIR] {
            let ks = if t == astra::JOURNAL_DIR {
                "catalog"
            } else {
                "smart_home"
            };
            let key = format!("{node}/{ks}/{t}/snapshots/{SNAP}/schema.cql");
            assert!(listed.contains_key(&key), "{key} missing");
        }
    }
}

pub fn s3_objects(s3: &S3Server, api: &DevOpsApi, id: &str) -> BTreeMap<String, Vec<u8>> {
    let bucket = format!("ds-mig-{}", api.db_id());
    let prefix = format!("{id}/sstables/");
    s3.list_files(&bucket)
        .into_iter()
        .filter_map(|k| {
            let rel = k.strip_prefix(&prefix)?.to_string();
            Some((rel, s3.read_file(&bucket, &k).unwrap()))
        })
        .collect()
}

pub fn aws(cfg: impl FnOnce(&mut Config)) -> (S3Server, DevOpsApi) {
    let s3 = S3Server::start();
    let mut c = Config::new(Upload::Aws(s3.sts.clone()));
    cfg(&mut c);
    s3.create_bucket(&format!("ds-mig-{}", c.db_id));
    (s3, DevOpsApi::start(c))
}
