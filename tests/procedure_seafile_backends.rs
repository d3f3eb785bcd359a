//! seafile-migrate against S3 backends addressed as Seafile's seafobj addresses them
//! (haiwen/seafobj objwrapper/s3.py `SeafS3Client.do_connect`, objwrapper/alioss.py): virtual-hosted
//! S3 (the default without `path_style_request`), OSS (always virtual-hosted), the signing
//! region, migrate.py's identical-storage check, and source listings that cannot be Seafile's.
//! The s3s server answers virtual-hosted requests for names below `localhost`
//! (`tests/common/s3.rs` `LocalhostHost`).

use crate::common;
use crate::seafile_support;

use common::Workspace;
use common::s3::S3Server;
use seafile_support::{
    CaptureProxy, TYPES, conf_tree, fs_objects, fs_sections, generate, hostport, migrate,
    migrate_env,
};

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
    let out = migrate(
        &ws,
        &tree,
        &["-p", "verify=hash", "--log-json", "events.jsonl"],
        None,
    );
    out.code(0)
        .stderr_has("content differs 0")
        .stderr_has("ignores aws_region = eu-central-1");
    // The keys from seafile.conf appear in no output channel (the new seafile.conf holds them,
    // as it must).
    common::secrets::assert_run_keeps_secrets(
        &[&s3.secret_key],
        &out,
        ws.path(),
        &ws.join("events.jsonl"),
        None,
    );
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
fn virtual_hosted_prepends_the_bucket_even_when_the_host_starts_with_it() {
    // botocore always puts the bucket in front of the endpoint's authority
    // (botocore/utils.py switch_to_virtual_host_style: `host = bucket_name + '.' +
    // global_endpoint`; the S3 endpoint rules: `{url#scheme}://{Bucket}.{url#authority}{url#path}`),
    // so bucket `seafile-blocks` on host `seafile-blocks.localhost:PORT` is requested from
    // `seafile-blocks.seafile-blocks.localhost:PORT`. (The s3s server takes the first label as the
    // bucket either way: the hosts are what tells the two apart.)
    let s3 = S3Server::start();
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    let original = fs_objects(&tree.seafile_data);
    let mut dest = String::new();
    for (dtype, section) in TYPES {
        s3.create_bucket(&format!("seafile-{dtype}"));
        dest.push_str(&format!(
            "[{section}]\nname = s3\nbucket = seafile-{dtype}\nkey_id = {}\nkey = {}\n\
             host = seafile-{dtype}.localhost:{}\nuse_v4_signature = true\n\n",
            s3.access_key,
            s3.secret_key,
            port(&s3)
        ));
    }
    std::fs::write(tree.dest_conf_dir.join("seafile.conf"), &dest).unwrap();
    migrate(&ws, &tree, &["-p", "verify=hash"], None)
        .code(0)
        .stderr_has("content differs 0");
    assert_buckets_hold(&s3, "seafile", &original);
    let signed = s3.signed_requests();
    assert!(signed.len() > original.len(), "{}", signed.len());
    let want: Vec<String> = TYPES
        .iter()
        .map(|(t, _)| format!("seafile-{t}.seafile-{t}.localhost:{}", port(&s3)))
        .collect();
    for r in &signed {
        assert!(
            want.contains(&r.host),
            "not as botocore addresses it: {r:?}"
        );
    }
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

/// OSS sections for buckets `<prefix>-<type>` with the given lines (`endpoint`/`region`).
fn oss_sections(prefix: &str, lines: &str) -> String {
    TYPES
        .iter()
        .map(|(dtype, section)| {
            format!(
                "[{section}]\nname = oss\nbucket = {prefix}-{dtype}\nkey_id = LTAIexample\n\
                 key = secret\n{lines}\n"
            )
        })
        .collect()
}

#[test]
fn oss_with_only_a_region_is_addressed_at_seafobjs_internal_endpoint() {
    // seafobj objwrapper/alioss.py OSSConf: no endpoint -> host = 'oss-cn-%s-internal.aliyuncs.com'
    // % region, and oss2.Bucket(auth, host, bucket) addresses <bucket>.<host>. Aliyun is not
    // reachable here: a capturing proxy shows where ferry sends the first request and what it
    // signs, then refuses it.
    let proxy = CaptureProxy::start();
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    std::fs::write(
        tree.dest_conf_dir.join("seafile.conf"),
        oss_sections("oss", "region = hangzhou"),
    )
    .unwrap();
    migrate_env(&ws, &tree, &[], None, &[("HTTP_PROXY", &proxy.url)])
        .code(1)
        .stderr_has("oss (oss-cn-hangzhou-internal.aliyuncs.com/oss-commits)")
        .stderr_lacks("initial-migration");
    let heads = proxy.heads();
    assert!(!heads.is_empty(), "no request reached the proxy");
    for head in &heads {
        let line = head.lines().next().unwrap();
        assert!(
            line.starts_with("GET http://oss-commits.oss-cn-hangzhou-internal.aliyuncs.com/"),
            "{line}"
        );
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains("\r\nhost: oss-commits.oss-cn-hangzhou-internal.aliyuncs.com\r\n"),
            "{head}"
        );
        // OSS's S3 API scope: the region id of the endpoint.
        assert!(
            head.contains("/cn-hangzhou/s3/aws4_request"),
            "not signed for cn-hangzhou: {head}"
        );
    }
    // An empty endpoint is no endpoint (get_oss_conf reads '' and OSSConf tests `not host`).
    let ws2 = Workspace::new();
    let tree2 = generate(&ws2, "site");
    std::fs::write(
        tree2.dest_conf_dir.join("seafile.conf"),
        oss_sections("oss", "endpoint =\nregion = beijing"),
    )
    .unwrap();
    let before = proxy.heads().len();
    migrate_env(&ws2, &tree2, &[], None, &[("HTTP_PROXY", &proxy.url)])
        .code(1)
        .stderr_has("oss-cn-beijing-internal.aliyuncs.com/oss-commits");
    let later = &proxy.heads()[before..];
    assert!(!later.is_empty());
    assert!(
        later.iter().all(|h| h
            .starts_with("GET http://oss-commits.oss-cn-beijing-internal.aliyuncs.com/")
            && h.contains("/cn-beijing/s3/aws4_request")),
        "{later:?}"
    );
}

#[test]
fn oss_identical_storage_is_the_bucket_name_alone() {
    // seafobj/backends/alioss.py get_container_name() is the bucket name only, so migrate.py
    // (`get_name()` and `get_container_name()` equal) refuses the same bucket names on another
    // OSS endpoint or region, unlike S3, where the host is part of the name. Refused before any
    // request; another bucket name on the same endpoint is a move and gets as far as the server.
    let proxy = CaptureProxy::start();
    let ws = Workspace::new();
    let src = oss_sections("seafile", "endpoint = oss-cn-beijing.aliyuncs.com");
    let t = conf_tree(
        &ws,
        "same",
        &src,
        &oss_sections("seafile", "region = hangzhou"),
    );
    migrate_env(&ws, &t, &[], None, &[("HTTP_PROXY", &proxy.url)])
        .code(1)
        .stderr_has("same storage");
    assert!(proxy.heads().is_empty(), "{:?}", proxy.heads());
    let t = conf_tree(
        &ws,
        "other",
        &src,
        &oss_sections("seafile2", "endpoint = oss-cn-beijing.aliyuncs.com"),
    );
    migrate_env(&ws, &t, &[], None, &[("HTTP_PROXY", &proxy.url)])
        .code(1)
        .stderr_lacks("same storage");
    assert!(!proxy.heads().is_empty());
}

#[test]
fn host_sections_sign_with_aws_default_region_as_boto3_does() {
    // seafobj passes no region_name to boto3.client when host is set (objwrapper/s3.py
    // SeafS3Client.do_connect); botocore then takes the `region` config variable
    // (session.py _resolve_region_name), whose environment variable is AWS_DEFAULT_REGION
    // (configprovider.py: 'region': ('region', 'AWS_DEFAULT_REGION', ...)).
    let s3 = S3Server::start();
    let ws = Workspace::new();
    let tree = generate(&ws, "site");
    let dest = seafile_support::s3_sections(
        &s3,
        "rg",
        &format!(
            "host = {}\npath_style_request = true\nuse_v4_signature = true\naws_region = eu-west-3\n",
            hostport(&s3)
        ),
    );
    std::fs::write(tree.dest_conf_dir.join("seafile.conf"), &dest).unwrap();
    migrate_env(
        &ws,
        &tree,
        &["-p", "phase=initial"],
        None,
        &[("AWS_DEFAULT_REGION", "ap-southeast-2")],
    )
    .code(0)
    .stderr_has("with region ap-southeast-2");
    let signed = s3.signed_requests();
    assert!(!signed.is_empty());
    assert!(
        signed.iter().all(|r| r.region == "ap-southeast-2"),
        "{:?}",
        signed.iter().map(|r| &r.region).collect::<Vec<_>>()
    );
}
