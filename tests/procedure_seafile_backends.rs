//! seafile-migrate against S3 backends addressed as Seafile's seafobj addresses them
//! (haiwen/seafobj objwrapper/s3.py `SeafS3Client.do_connect`, objwrapper/alioss.py): virtual-hosted
//! S3 (the default without `path_style_request`), OSS (always virtual-hosted), the signing
//! region, migrate.py's identical-storage check, and source listings that cannot be Seafile's.
//! The s3s server answers virtual-hosted requests for names below `localhost`
//! (`tests/common/s3.rs` `LocalhostHost`).

mod common;
#[path = "seafile_support/mod.rs"]
mod seafile_support;

use common::Workspace;
use common::s3::S3Server;
use seafile_support::{TYPES, conf_tree, fs_objects, fs_sections, generate, hostport, migrate};

fn port(s3: &S3Server) -> u16 {
    s3.addr.port()
}

/// Asserts every object of `original` is in bucket `<prefix>-<type>`, byte for byte, and
/// nothing else is.
fn assert_buckets_hold(s3: &S3Server, prefix: &str, original: &[(String, String, Vec<u8>)]) {
    for (dtype, key, bytes) in original {
        let got = s3
            .read_file(&format!("{prefix}-{dtype}"), key)
            .unwrap_or_else(|| panic!("{dtype} {key} missing from {prefix}-{dtype}"));
        assert_eq!(&got, bytes, "{dtype} {key}");
    }
    for (dtype, _) in TYPES {
        let n = original.iter().filter(|o| o.0 == dtype).count();
        assert_eq!(
            s3.list_files(&format!("{prefix}-{dtype}")).len(),
            n,
            "{dtype}"
        );
    }
}

#[test]
fn virtual_hosted_s3_both_ways_signed_with_seafobjs_region() {
    let s3 = S3Server::start();
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    let original = fs_objects(&tree.seafile_data);
    // Seafile's documented S3-compatible section without path_style_request: virtual-hosted.
    // Option names in any case and booleans as configparser reads them.
    let mut dest = String::new();
    for (dtype, section) in TYPES {
        s3.create_bucket(&format!("vh-{dtype}"));
        dest.push_str(&format!(
            "[{section}]\nNAME = s3\nBucket = vh-{dtype}\nkey_id = {}\nKey = {}\nhost = localhost:{}\n\
             aws_region = eu-central-1\nuse_v4_signature = TRUE\nUse_Https = off\n\n",
            s3.access_key,
            s3.secret_key,
            port(&s3)
        ));
    }
    std::fs::write(tree.dest_conf_dir.join("seafile.conf"), &dest).unwrap();
    migrate(&ws, &tree, &["-p", "verify=hash"], None)
        .code(0)
        .stderr_has("content differs 0")
        .stderr_has("ignores aws_region = eu-central-1");
    assert_buckets_hold(&s3, "vh", &original);
    let signed = s3.signed_requests();
    assert!(signed.len() > original.len(), "{}", signed.len());
    for r in &signed {
        let bucket = r.host.split('.').next().unwrap();
        assert!(
            ["vh-commits", "vh-fs", "vh-blocks"].contains(&bucket)
                && r.host == format!("{bucket}.localhost:{}", port(&s3)),
            "not virtual-hosted: {r:?}"
        );
        // seafobj passes no region_name to boto3 when host is set: boto3 signs us-east-1.
        assert_eq!(r.region, "us-east-1", "{r:?}");
    }

    // And back: the virtual-hosted S3 source (seafile.conf was replaced) -> a new fs backend,
    // this time signing with the section's aws_region, as asked.
    let back = Workspace::new();
    let conf = std::fs::read_to_string(tree.conf_dir.join("seafile.conf")).unwrap();
    let restored = back.join("restored");
    let t2 = conf_tree(&back, "b", &conf, &fs_sections(&restored));
    let before = s3.signed_requests().len();
    migrate(
        &back,
        &t2,
        &["-p", "verify=hash", "-p", "sign_region=aws_region"],
        None,
    )
    .code(0);
    assert_eq!(
        fs_objects(&restored),
        original,
        "S3 -> fs restores the tree"
    );
    let later = &s3.signed_requests()[before..];
    assert!(!later.is_empty());
    assert!(
        later.iter().all(|r| r.region == "eu-central-1"),
        "{later:?}"
    );
}

#[test]
fn oss_is_virtual_hosted_on_its_endpoint_with_the_endpoints_region() {
    let s3 = S3Server::start();
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    let original = fs_objects(&tree.seafile_data);
    let endpoint = format!("oss-cn-hangzhou.localhost:{}", port(&s3));
    let mut dest = String::new();
    for (dtype, section) in TYPES {
        s3.create_bucket(&format!("oss-{dtype}"));
        dest.push_str(&format!(
            "[{section}]\nname = oss\nbucket = oss-{dtype}\nkey_id = {}\nkey = {}\nendpoint = {endpoint}\n\n",
            s3.access_key, s3.secret_key
        ));
    }
    std::fs::write(tree.dest_conf_dir.join("seafile.conf"), &dest).unwrap();
    migrate(&ws, &tree, &["-p", "verify=hash"], None)
        .code(0)
        .stderr_has("content differs 0");
    assert_buckets_hold(&s3, "oss", &original);
    let signed = s3.signed_requests();
    assert!(!signed.is_empty());
    for r in &signed {
        let bucket = r.host.split('.').next().unwrap();
        assert_eq!(r.host, format!("{bucket}.{endpoint}"), "{r:?}");
        assert!(bucket.starts_with("oss-"), "{r:?}");
        assert_eq!(r.region, "cn-hangzhou", "{r:?}");
    }
}

#[test]
fn identical_storage_is_host_and_bucket_as_migrate_py_compares() {
    let a = S3Server::start();
    let b = S3Server::start();
    let ws = Workspace::new();
    let site = generate(&ws, "site");
    let original = fs_objects(&site.seafile_data);
    let path_style = |s3: &S3Server, host: &str| {
        seafile_support::s3_sections(
            s3,
            "seafile",
            &format!(
                "host = {host}:{}\npath_style_request = true\nuse_v4_signature = true\n",
                port(s3)
            ),
        )
    };
    let src_conf = path_style(&a, "127.0.0.1");
    for (dtype, key, bytes) in &original {
        a.put_file(&format!("seafile-{dtype}"), key, bytes);
    }
    // Same bucket names on another host (MinIO seafile-blocks -> another seafile-blocks): a move.
    let t = conf_tree(&ws, "move", &src_conf, &path_style(&b, "localhost"));
    migrate(&ws, &t, &["-p", "verify=hash"], None).code(0);
    assert_buckets_hold(&b, "seafile", &original);
    // Same host and bucket: migrate.py's get_container_name() is host (without port) + bucket,
    // so it stops, and so does ferry.
    let t = conf_tree(&ws, "same", &src_conf, &path_style(&b, "127.0.0.1"));
    migrate(&ws, &t, &[], None)
        .code(1)
        .stderr_has("same storage");
}

#[test]
fn a_source_listing_that_cannot_be_seafiles_storage_is_an_error() {
    let s3 = S3Server::start();
    let ws = Workspace::new();
    let lines = format!(
        "host = {}\npath_style_request = true\nuse_v4_signature = true\n",
        hostport(&s3)
    );
    let src = seafile_support::s3_sections(&s3, "empty", &lines);
    let dest_dir = ws.join("dest");
    let t = conf_tree(&ws, "t", &src, &fs_sections(&dest_dir));
    // Nothing at all: refused unless the operator says the source really is empty.
    migrate(&ws, &t, &[], None)
        .code(1)
        .stderr_has("lists no object at all")
        .stderr_has("allow_empty=true");
    let t_ok = conf_tree(&ws, "t2", &src, &fs_sections(&ws.join("dest2")));
    migrate(&ws, &t_ok, &["-p", "allow_empty=true"], None).code(0);
    // Blocks but no commit and no fs object: a listing that missed objects.
    s3.put_file(
        "empty-blocks",
        "3f9e4aa5-d6ba-4066-a1d6-81824f422af1/0ae2c82d9ebd7e166ca0e24d52bba31fd64e3c8d",
        b"block",
    );
    let out = migrate(&ws, &t, &["--fresh"], None);
    out.code(1)
        .stderr_has("cannot be Seafile's storage")
        .stderr_has("1 blocks objects but no commit");
    // The configuration was not switched to the destination.
    let conf = std::fs::read_to_string(t.conf_dir.join("seafile.conf")).unwrap();
    assert_eq!(conf, src);
}
