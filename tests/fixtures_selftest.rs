//! Proves the shared test fixtures work: the in-process S3 server (real SigV4), the fault proxy,
//! and Azurite, exercised with the object_store crate directly.

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use common::azurite::azurite;
use common::fault_proxy::{FaultProxy, Faults, Outcome};
use common::s3::{S3Server, UNSET_ENV};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

fn fast_retry(max_retries: usize) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            base: 2.0,
        },
        max_retries,
        retry_timeout: Duration::from_secs(30),
    }
}

async fn list_keys(store: &dyn ObjectStore, prefix: Option<&str>) -> Vec<String> {
    let prefix = prefix.map(Path::from);
    let mut keys: Vec<String> = store
        .list(prefix.as_ref())
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    keys.sort();
    keys
}

async fn get_bytes(store: &dyn ObjectStore, key: &str) -> Vec<u8> {
    store
        .get(&Path::from(key))
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"))
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("read {key}: {e}"))
        .to_vec()
}

#[tokio::test]
async fn s3_server_put_get_list_and_disk_layout() {
    let s3 = S3Server::start();
    assert!(s3.endpoint.starts_with("http://127.0.0.1:"));
    s3.create_bucket("alpha");
    let store = s3.store("alpha");

    store
        .put(&Path::from("dir/one.txt"), PutPayload::from_static(b"one"))
        .await
        .expect("put one");
    store
        .put(&Path::from("two.bin"), PutPayload::from(vec![7u8; 100_000]))
        .await
        .expect("put two");
    // Objects are plain files under root/bucket.
    assert_eq!(s3.read_file("alpha", "dir/one.txt").unwrap(), b"one");
    assert_eq!(s3.read_file("alpha", "two.bin").unwrap().len(), 100_000);

    // A file written on disk is served as an object.
    s3.put_file("alpha", "dir/seeded.txt", b"from disk");
    assert_eq!(get_bytes(&store, "dir/seeded.txt").await, b"from disk");
    assert_eq!(get_bytes(&store, "dir/one.txt").await, b"one");

    let meta = store.head(&Path::from("two.bin")).await.expect("head");
    assert_eq!(meta.size, 100_000);

    assert_eq!(
        list_keys(&store, None).await,
        vec!["dir/one.txt", "dir/seeded.txt", "two.bin"]
    );
    assert_eq!(
        list_keys(&store, Some("dir")).await,
        vec!["dir/one.txt", "dir/seeded.txt"]
    );
    assert_eq!(
        s3.list_files("alpha"),
        vec!["dir/one.txt", "dir/seeded.txt", "two.bin"]
    );

    // A missing key is NotFound, not an auth or server error.
    let missing = store.get(&Path::from("nope")).await.unwrap_err();
    assert!(
        matches!(missing, object_store::Error::NotFound { .. }),
        "{missing}"
    );
    assert!(s3.requests() >= 8, "requests counted: {}", s3.requests());

    // env() carries what a child needs; UNSET_ENV lists the machine's CA bundle.
    let env = s3.env();
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("AWS_ENDPOINT_URL"), Some(s3.endpoint.clone()));
    assert_eq!(get("AWS_ACCESS_KEY_ID"), Some(s3.access_key.clone()));
    assert_eq!(get("AWS_SECRET_ACCESS_KEY"), Some(s3.secret_key.clone()));
    assert_eq!(get("AWS_REGION").as_deref(), Some("us-east-1"));
    assert_eq!(get("AWS_ALLOW_HTTP").as_deref(), Some("true"));
    assert!(UNSET_ENV.contains(&"AWS_CA_BUNDLE"));
}

#[tokio::test]
async fn s3_server_checks_signatures() {
    let s3 = S3Server::start();
    s3.create_bucket("secure");
    s3.put_file("secure", "k.txt", b"secret data");

    let wrong_secret = s3
        .store_builder("secure")
        .with_secret_access_key("not-the-secret-key-at-all-0000000000000")
        .with_retry(fast_retry(0))
        .build()
        .unwrap();
    let err = wrong_secret
        .put(&Path::from("x.txt"), PutPayload::from_static(b"x"))
        .await
        .expect_err("a wrong secret key must be refused");
    let msg = err.to_string();
    assert!(
        msg.contains("403") || msg.contains("SignatureDoesNotMatch"),
        "unexpected error: {msg}"
    );
    assert!(s3.read_file("secure", "x.txt").is_none(), "nothing written");
    let err = wrong_secret
        .get(&Path::from("k.txt"))
        .await
        .expect_err("reading with a wrong secret must be refused");
    assert!(
        !matches!(err, object_store::Error::NotFound { .. }),
        "auth error expected: {err}"
    );

    let wrong_key = s3
        .store_builder("secure")
        .with_access_key_id("AKIAUNKNOWN000000000")
        .with_retry(fast_retry(0))
        .build()
        .unwrap();
    wrong_key
        .get(&Path::from("k.txt"))
        .await
        .expect_err("an unknown access key must be refused");

    let anonymous = s3
        .store_builder("secure")
        .with_skip_signature(true)
        .with_retry(fast_retry(0))
        .build()
        .unwrap();
    anonymous
        .get(&Path::from("k.txt"))
        .await
        .expect_err("an unsigned request must be refused");

    // The right keys still work.
    assert_eq!(
        get_bytes(&s3.store("secure"), "k.txt").await,
        b"secret data"
    );
}

#[tokio::test]
async fn s3_server_with_session_token_requires_it() {
    let s3 = S3Server::with_session_token("token-1234");
    s3.create_bucket("tok");
    let good = s3.store("tok");
    good.put(&Path::from("a.txt"), PutPayload::from_static(b"a"))
        .await
        .expect("put with the token");
    assert_eq!(get_bytes(&good, "a.txt").await, b"a");
    assert!(
        s3.env()
            .contains(&("AWS_SESSION_TOKEN".into(), "token-1234".into()))
    );

    let no_token = s3
        .store_builder("tok")
        .with_retry(fast_retry(0))
        .build()
        .unwrap();
    let err = no_token
        .get(&Path::from("a.txt"))
        .await
        .expect_err("no token must be refused");
    assert!(err.to_string().contains("InvalidToken"), "{err}");

    let wrong_token = s3
        .store_builder("tok")
        .with_token("token-9999")
        .with_retry(fast_retry(0))
        .build()
        .unwrap();
    let err = wrong_token
        .put(&Path::from("b.txt"), PutPayload::from_static(b"b"))
        .await
        .expect_err("a wrong token must be refused");
    assert!(err.to_string().contains("InvalidToken"), "{err}");
    assert!(s3.read_file("tok", "b.txt").is_none());
}

#[tokio::test]
async fn fault_proxy_is_transparent_and_keeps_signatures_valid() {
    let s3 = S3Server::start();
    s3.create_bucket("via");
    let proxy = FaultProxy::start(&s3.endpoint, Faults::new());
    assert_ne!(proxy.endpoint, s3.endpoint);
    // The client signs for the proxy's host; s3s verifies what the proxy forwards.
    let store = s3.store_via("via", &proxy.endpoint);
    store
        .put(&Path::from("p/1.txt"), PutPayload::from_static(b"hello"))
        .await
        .expect("put through the proxy");
    assert_eq!(get_bytes(&store, "p/1.txt").await, b"hello");
    assert_eq!(list_keys(&store, None).await, vec!["p/1.txt"]);
    assert_eq!(s3.read_file("via", "p/1.txt").unwrap(), b"hello");

    let c = proxy.counts();
    assert_eq!(c.seen, 3);
    assert_eq!(c.forwarded, 3);
    assert_eq!((c.failed, c.reset, c.truncated), (0, 0, 0));
    assert_eq!(s3.requests(), 3, "every request reached the server once");
    let log = proxy.log();
    assert_eq!(log[0].method, "PUT");
    assert_eq!(log[0].path, "/via/p/1.txt");
    assert_eq!(log[0].status, Some(200));
    assert!(log.iter().all(|r| r.outcome == Outcome::Forwarded));
}

#[tokio::test]
async fn fault_proxy_503s_are_retried_by_object_store() {
    let s3 = S3Server::start();
    s3.create_bucket("flaky");
    // Every 2nd request fails: each retried request then succeeds.
    let proxy = FaultProxy::start(&s3.endpoint, Faults::new().fail_every(2));
    let store = s3
        .store_builder("flaky")
        .with_endpoint(proxy.endpoint.clone())
        .with_retry(fast_retry(5))
        .build()
        .unwrap();

    for i in 0..6 {
        let key = format!("f/{i}.txt");
        store
            .put(&Path::from(key.as_str()), PutPayload::from(format!("v{i}")))
            .await
            .unwrap_or_else(|e| panic!("put {key} despite 503s: {e}"));
    }
    for i in 0..6 {
        let key = format!("f/{i}.txt");
        assert_eq!(get_bytes(&store, &key).await, format!("v{i}").as_bytes());
        assert_eq!(
            s3.read_file("flaky", &key).unwrap(),
            format!("v{i}").as_bytes()
        );
    }
    let c = proxy.counts();
    // 12 operations, requests 2, 4, 6... fail: the 1st operation passes at once, each of the
    // 11 others fails once and passes on its retry.
    assert_eq!(c.forwarded, 12, "{c:?}");
    assert_eq!(c.failed, 11, "{c:?}");
    assert_eq!(c.seen, 23, "{c:?}");
    assert_eq!(c.reset, 0);
    let failures: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .collect();
    assert!(failures.iter().all(|r| r.status == Some(503)));
    assert!(failures.iter().any(|r| r.method == "PUT"));
    assert!(failures.iter().any(|r| r.method == "GET"));

    // Without retries the injected failure reaches the client as a SlowDown 503.
    proxy.set_faults(Faults::new().fail_every(1).max_faults(1));
    let no_retry = s3
        .store_builder("flaky")
        .with_endpoint(proxy.endpoint.clone())
        .with_retry(fast_retry(0))
        .build()
        .unwrap();
    let err = no_retry.get(&Path::from("f/0.txt")).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("503") || msg.contains("SlowDown"), "{msg}");
    // max_faults(1): the next request goes through.
    assert_eq!(get_bytes(&no_retry, "f/0.txt").await, b"v0");
    assert_eq!(proxy.failed(), 12);
}

#[tokio::test]
async fn fault_proxy_resets_only_selected_methods() {
    let s3 = S3Server::start();
    s3.create_bucket("resets");
    let proxy = FaultProxy::start(
        &s3.endpoint,
        Faults::new().reset_every(2).only_methods(&["GET"]),
    );
    let store = s3
        .store_builder("resets")
        .with_endpoint(proxy.endpoint.clone())
        .with_retry(fast_retry(5))
        .build()
        .unwrap();
    for i in 0..4 {
        store
            .put(
                &Path::from(format!("r/{i}")),
                PutPayload::from(vec![i as u8; 1000]),
            )
            .await
            .expect("PUTs are not faulted");
    }
    assert_eq!(proxy.reset(), 0, "PUT is not a selected method");
    for i in 0..4 {
        assert_eq!(
            get_bytes(&store, &format!("r/{i}")).await,
            vec![i as u8; 1000]
        );
    }
    let c = proxy.counts();
    // GET requests 2, 4, 6 are reset: the 1st GET passes, the 3 others are retried once.
    assert_eq!(c.reset, 3, "{c:?}");
    assert_eq!(c.matched, 7, "only GETs are counted: {c:?}");
    assert_eq!(c.forwarded, 8, "4 PUTs and 4 GETs: {c:?}");
    assert!(
        proxy
            .log()
            .iter()
            .filter(|r| r.outcome == Outcome::Reset)
            .all(|r| r.method == "GET")
    );

    // On the wire a reset is a TCP RST with no response at all.
    proxy.set_faults(Faults::new().reset_every(1));
    let mut sock = std::net::TcpStream::connect(proxy.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.write_all(b"GET /resets/r/0 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let err = sock
        .read_to_end(&mut buf)
        .expect_err("the connection must be reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(buf.is_empty(), "no response bytes: {buf:?}");
    assert_eq!(proxy.reset(), 4);
}

#[tokio::test]
async fn fault_proxy_truncates_response_bodies() {
    let s3 = S3Server::start();
    s3.create_bucket("trunc");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    s3.put_file("trunc", "big.bin", &data);
    let proxy = FaultProxy::start(
        &s3.endpoint,
        Faults::new()
            .truncate_every(1, 1000)
            .only_methods(&["GET"])
            .max_faults(1),
    );
    let store = s3
        .store_builder("trunc")
        .with_endpoint(proxy.endpoint.clone())
        .with_retry(fast_retry(3))
        .build()
        .unwrap();
    let result = store
        .get(&Path::from("big.bin"))
        .await
        .expect("headers arrive")
        .bytes()
        .await;
    let c = proxy.counts();
    assert_eq!(c.truncated, 1, "{c:?}");
    match result {
        // object_store resumes an interrupted body with a ranged GET.
        Ok(bytes) => {
            assert_eq!(bytes.as_ref(), data.as_slice());
            assert_eq!(c.forwarded, 1, "the resumed GET: {c:?}");
            let log = proxy.log();
            assert_eq!(log.len(), 2);
            assert_eq!(log[0].outcome, Outcome::Truncated);
        }
        Err(e) => panic!("a truncated body should be resumed by object_store: {e}"),
    }
    // After max_faults the proxy is transparent again.
    assert_eq!(get_bytes(&store, "big.bin").await, data);
}

#[tokio::test]
async fn azurite_put_get_list() {
    let Some(az) = azurite() else {
        return; // azurite() printed why
    };
    let container = az.unique_container("selftest");
    let store = az.store(&container);
    store
        .put(&Path::from("d/one.txt"), PutPayload::from_static(b"one"))
        .await
        .expect("put to Azurite");
    store
        .put(&Path::from("two.txt"), PutPayload::from_static(b"two"))
        .await
        .expect("put to Azurite");
    assert_eq!(get_bytes(&store, "d/one.txt").await, b"one");
    assert_eq!(list_keys(&store, None).await, vec!["d/one.txt", "two.txt"]);
    assert_eq!(list_keys(&store, Some("d")).await, vec!["d/one.txt"]);
    // Creating an existing container is fine.
    az.create_container(&container);

    // A wrong key is refused.
    let bad = az
        .store_builder(&container)
        .with_access_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==")
        .with_retry(fast_retry(0))
        .build()
        .unwrap();
    bad.get(&Path::from("two.txt"))
        .await
        .expect_err("a wrong account key must be refused");

    // Account SAS: read-only lists and reads but cannot write.
    let ro = az.sas_store(&container, "rl");
    assert_eq!(get_bytes(&ro, "two.txt").await, b"two");
    assert_eq!(list_keys(&ro, None).await, vec!["d/one.txt", "two.txt"]);
    ro.put(&Path::from("ro.txt"), PutPayload::from_static(b"x"))
        .await
        .expect_err("a read-only SAS cannot write");
    let rw = az.sas_store(&container, "rwdlac");
    rw.put(&Path::from("rw.txt"), PutPayload::from_static(b"rw"))
        .await
        .expect("a read-write SAS can write");
    assert_eq!(get_bytes(&store, "rw.txt").await, b"rw");
    assert!(
        az.container_sas_url(&container, "rl")
            .starts_with(&format!("{}/{container}?sv=", az.endpoint))
    );

    // Through the fault proxy (SharedKey does not sign the host): 503s are retried.
    let proxy = FaultProxy::start(&az.blob_url, Faults::new().fail_every(2));
    let via = az
        .store_builder_via(&container, &proxy.endpoint)
        .with_retry(fast_retry(5))
        .build()
        .unwrap();
    via.put(&Path::from("p.txt"), PutPayload::from_static(b"proxied"))
        .await
        .expect("put through the proxy");
    assert_eq!(get_bytes(&via, "p.txt").await, b"proxied");
    assert!(proxy.failed() >= 1, "{:?}", proxy.counts());

    az.delete_container(&container);
    let r = az
        .request("GET", &container, &[("restype", "container")], &[], b"")
        .unwrap();
    assert_eq!(r.status, 404, "container deleted");
}

/// The secrets check finds a secret in a state file, percent-encoded in a log line and
/// base64-encoded in stderr, and passes when none is there.
#[test]
fn the_secrets_check_finds_secrets_in_every_form() {
    use common::secrets::assert_absent;
    let ws = common::Workspace::new();
    ws.write("state/journal.jsonl", "{\"step\":\"x\"}\n");
    let clean = assert_absent(
        &["p@ss w0rd!"],
        &[("stderr", "nothing here")],
        &[&ws.join("state")],
    );
    assert_eq!(clean, 1);
    let leaks: Vec<(&str, String, &str)> = vec![
        ("file", "{\"url\":\"p@ss w0rd!\"}".into(), ""),
        ("file", "GET /?pw=p%40ss+w0rd%21".into(), ""),
        ("text", String::new(), "Basic cEBzcyB3MHJkIQ=="),
    ];
    for (kind, file, text) in leaks {
        ws.write("state/cache.txt", &file);
        let r = std::panic::catch_unwind(|| {
            assert_absent(&["p@ss w0rd!"], &[("stderr", text)], &[&ws.join("state")])
        });
        assert!(
            r.is_err(),
            "a secret in a {kind} was not found: {file}{text}"
        );
        std::fs::remove_file(ws.join("state/cache.txt")).unwrap();
    }
}
