//! Server-side encryption as store options (src/store/open.rs, `open_s3`), checked on the wire
//! against the in-process s3s-fs server (its request-header capture, tests/common/s3.rs): the
//! headers S3 reads (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/ServerSideEncryptionCustomerKeys.html>)
//! on every request that must carry them, and the SSE-C key never printed.

use crate::common;

use base64::Engine;
use bytes::Bytes;
use common::s3::{S3Server, SeenRequest};
use ferry::store::{OpenOptions, Store};
use object_store::{ObjectStoreExt, WriteMultipart};

async fn open(s3: &S3Server, bucket: &str, extra: &[(&str, &str)]) -> Store {
    let mut values = std::collections::BTreeMap::new();
    for (k, v) in [
        ("endpoint", s3.endpoint.as_str()),
        ("region", common::s3::REGION),
        ("access_key_id", s3.access_key.as_str()),
        ("secret_access_key", s3.secret_key.as_str()),
        ("allow_http", "true"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        values.insert(k.to_string(), v.to_string());
    }
    let opts = OpenOptions {
        values,
        create: false,
        no_probe: true,
    };
    ferry::store::open(&format!("s3://{bucket}/base"), &opts)
        .await
        .unwrap_or_else(|e| panic!("open s3://{bucket}: {}", e.message))
}

/// A put, a 3-part multipart upload, a head and a get; returns what the server saw of them.
async fn exercise(s3: &S3Server, store: &Store) -> Vec<SeenRequest> {
    let before = s3.requests_seen().len();
    store
        .put("small", Bytes::from_static(b"small object"))
        .await
        .unwrap();
    let big: Vec<u8> = (0..(11 << 20)).map(|i: u32| (i % 251) as u8).collect();
    let up = store
        .inner
        .put_multipart(&store.path("big").unwrap())
        .await
        .unwrap();
    let mut w = WriteMultipart::new_with_chunk_size(up, 5 << 20);
    w.write(&big);
    w.finish().await.unwrap();
    assert_eq!(store.head("small").await.unwrap().unwrap().size, 12);
    assert_eq!(store.get("small").await.unwrap(), &b"small object"[..]);
    assert!(store.get("big").await.unwrap() == big);
    s3.requests_seen()[before..].to_vec()
}

fn check(seen: &[SeenRequest], what: &str, which: impl Fn(&SeenRequest) -> bool, h: &str, v: &str) {
    let picked: Vec<_> = seen.iter().filter(|r| which(r)).collect();
    assert!(!picked.is_empty(), "no {what} request among {seen:#?}");
    for r in picked {
        assert_eq!(r.header(h), Some(v), "{what} {} {}: {h}", r.method, r.uri);
    }
}

fn put_object(r: &SeenRequest) -> bool {
    r.method == "PUT" && !r.uri.contains("partNumber=")
}
fn create_multipart(r: &SeenRequest) -> bool {
    r.method == "POST" && r.uri.contains("?uploads")
}
fn upload_part(r: &SeenRequest) -> bool {
    r.method == "PUT" && r.uri.contains("partNumber=")
}
fn head(r: &SeenRequest) -> bool {
    r.method == "HEAD"
}
fn get_object(r: &SeenRequest) -> bool {
    r.method == "GET" && !r.uri.contains("list-type")
}

/// seafobj's `sse_c_key` (32 characters, the raw key) is sent base64-encoded with its MD5 on
/// PutObject, CreateMultipartUpload, UploadPart, HeadObject and GetObject, as boto3 sends
/// `SSECustomerKey`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_c_key_is_sent_on_put_parts_head_and_get() {
    let s3 = S3Server::start();
    s3.create_bucket("ssec");
    let raw = "0123456789abcdef0123456789ABCDEF";
    let store = open(&s3, "ssec", &[("sse_c_key", raw)]).await;
    let seen = exercise(&s3, &store).await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.encode(raw);
    let md5 = {
        use md5::Digest;
        b64.encode(md5::Md5::digest(raw.as_bytes()))
    };
    for (what, which) in [
        ("PutObject", put_object as fn(&SeenRequest) -> bool),
        ("CreateMultipartUpload", create_multipart),
        ("UploadPart", upload_part),
        ("HeadObject", head),
        ("GetObject", get_object),
    ] {
        check(
            &seen,
            what,
            which,
            "x-amz-server-side-encryption-customer-algorithm",
            "AES256",
        );
        check(
            &seen,
            what,
            which,
            "x-amz-server-side-encryption-customer-key",
            &key,
        );
        check(
            &seen,
            what,
            which,
            "x-amz-server-side-encryption-customer-key-md5",
            &md5,
        );
    }
}

/// SSE-S3 and SSE-KMS apply to writes only (S3 decrypts those reads by itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_s3_and_sse_kms_are_sent_on_object_creation() {
    let s3 = S3Server::start();
    s3.create_bucket("sses3");
    let store = open(&s3, "sses3", &[("server_side_encryption", "AES256")]).await;
    let seen = exercise(&s3, &store).await;
    for (what, which) in [
        ("PutObject", put_object as fn(&SeenRequest) -> bool),
        ("CreateMultipartUpload", create_multipart),
    ] {
        check(&seen, what, which, "x-amz-server-side-encryption", "AES256");
    }

    let kms = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let store = open(
        &s3,
        "sses3",
        &[
            ("server_side_encryption", "aws:kms"),
            ("sse_kms_key_id", kms),
        ],
    )
    .await;
    let seen = exercise(&s3, &store).await;
    for (what, which) in [
        ("PutObject", put_object as fn(&SeenRequest) -> bool),
        ("CreateMultipartUpload", create_multipart),
    ] {
        check(
            &seen,
            what,
            which,
            "x-amz-server-side-encryption",
            "aws:kms",
        );
        check(
            &seen,
            what,
            which,
            "x-amz-server-side-encryption-aws-kms-key-id",
            kms,
        );
    }
}
