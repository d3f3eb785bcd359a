//! ferry's GCS client (src/store/gcs.rs, gcs_upload.rs) under network faults: the fault proxy
//! (tests/common/fault_proxy.rs) sits in front of fake-gcs-server and answers 5xx/429, resets
//! connections, cuts downloads and stalls; what must come out is the right data, or an error of
//! the right kind, not retried when retrying cannot help.
//!
//! One part cannot use the emulator: resuming a resumable session. fake-gcs-server appends every
//! `PUT` body to the session whatever its `Content-Range` says, and finalizes the object on a
//! status query (`bytes */*` has no known range, so `commit` stays true; fsouza/fake-gcs-server
//! `fakestorage/upload.go`, `uploadFileContent`). That test runs against a session double that
//! follows the protocol as Google documents it
//! (<https://cloud.google.com/storage/docs/performing-resumable-uploads#status-check>): a chunk
//! must start where the session ends, a status query is answered `308` with `Range: bytes=0-N`.

use crate::common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::fault_proxy::{FaultProxy, Faults, Outcome};
use common::http_server::{HttpServer, Reply};
use ferry::runtime::error::ErrorKind;
use ferry::store::{OpenOptions, Store};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

async fn open_via(proxy: &FaultProxy, bucket: &str, extra: &[(&str, &str)]) -> Store {
    let mut values = std::collections::BTreeMap::new();
    values.insert("endpoint".to_string(), proxy.endpoint.clone());
    values.insert("anonymous".to_string(), "true".to_string());
    for (k, v) in extra {
        values.insert(k.to_string(), v.to_string());
    }
    let opts = OpenOptions {
        values,
        create: false,
        no_probe: true,
    };
    ferry::store::open(&format!("gs://{bucket}/base"), &opts)
        .await
        .unwrap_or_else(|e| panic!("open gs://{bucket}: {}", e.message))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_uploads_lists_and_reads_are_retried_through_5xx_429_resets_and_cut_downloads() {
    let Some(gcs) = common::gcs::gcs() else {
        return;
    };
    let bucket = gcs.unique_bucket("faults");
    let proxy = FaultProxy::start(&gcs.endpoint, Faults::new());
    let store = open_via(&proxy, &bucket, &[("list_page_size", "4")]).await;

    // Simple uploads: every 3rd POST answered 503, every 5th reset before it reaches the server.
    proxy.set_faults(
        Faults::new()
            .only_methods(&["POST"])
            .fail_every(3)
            .reset_every(5),
    );
    for i in 0..20 {
        store
            .put(&format!("k{i:02}"), Bytes::from(format!("object {i}")))
            .await
            .unwrap_or_else(|e| panic!("put k{i:02}: {}", e.message));
    }
    let c = proxy.counts();
    assert!(c.failed >= 4 && c.reset >= 3, "faults injected: {c:?}");
    assert_eq!(gcs.get(&bucket, "base/k13").unwrap(), b"object 13");

    // List pages (4 objects a page, so 5 pages): 429s and resets on the list requests.
    proxy.set_faults(
        Faults::new()
            .path_contains("maxResults=")
            .fail_status(429)
            .fail_every(2)
            .reset_every(3),
    );
    let listed: Vec<_> = store.list(None).unwrap().try_collect().await.unwrap();
    assert_eq!(listed.len(), 20, "{listed:?}");
    let c = proxy.counts();
    assert!(c.failed >= 1 && c.reset >= 1, "list faults: {c:?}");

    // Reads: 500s and resets on metadata and media requests.
    proxy.set_faults(
        Faults::new()
            .only_methods(&["GET"])
            .fail_status(500)
            .fail_every(2)
            .reset_every(3),
    );
    for i in 0..20 {
        let got = store.get(&format!("k{i:02}")).await.unwrap();
        assert_eq!(got, format!("object {i}").as_bytes());
    }

    // A download cut in the middle (twice) resumes from where it stopped, same generation.
    let big = common::noise(3 << 20, 11);
    gcs.put(&bucket, "base/big.bin", &big);
    proxy.set_faults(
        Faults::new()
            .path_contains("alt=media")
            .truncate_every(1, 700_000)
            .max_faults(2),
    );
    proxy.clear();
    let got = store.get("big.bin").await.unwrap();
    assert_eq!(proxy.truncated(), 2, "{:?}", proxy.log());
    assert!(
        got == big,
        "the resumed download differs ({} bytes)",
        got.len()
    );
    let media: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|r| r.path.contains("alt=media"))
        .collect();
    let generation = gcs.metadata(&bucket, "base/big.bin").unwrap()["generation"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        media
            .iter()
            .all(|r| r.path.contains(&format!("generation={generation}"))),
        "every media request is pinned to generation {generation}: {media:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_resumable_upload_start_is_retried_and_the_object_is_whole() {
    let Some(gcs) = common::gcs::gcs() else {
        return;
    };
    let bucket = gcs.unique_bucket("resumable");
    let proxy = FaultProxy::start(&gcs.endpoint, Faults::new());
    let store = open_via(&proxy, &bucket, &[]).await;
    // Only the session start is faulted: see the module comment for why chunk faults are tested
    // against the double.
    proxy.set_faults(
        Faults::new()
            .path_contains("uploadType=resumable")
            .fail_every(1)
            .reset_every(2)
            .max_faults(2),
    );
    let data = common::noise((2 << 20) + 4321, 5);
    let up = store
        .inner
        .put_multipart(&store.path("large.bin").unwrap())
        .await
        .unwrap();
    let mut w = WriteMultipart::new_with_chunk_size(up, 700_000);
    w.write(&data);
    w.finish().await.unwrap();
    let c = proxy.counts();
    assert_eq!((c.failed, c.reset), (1, 1), "{:?}", proxy.log());
    assert!(gcs.get(&bucket, "base/large.bin").unwrap() == data);
}

/// A resumable session as GCS runs it (see the module comment): bytes must arrive in order;
/// `bytes */…` asks what is held. `lose_answer_of` names a chunk start whose bytes are stored but
/// whose answer is a 503 (the answer lost on the way back).
struct SessionDouble {
    held: u64,
    accepted: Vec<(u64, String)>,
    mismatches: Vec<String>,
    status_queries: u32,
    lose_answer_of: Option<u64>,
}

fn session_reply(s: &mut SessionDouble, range: &str, body_len: u64, sha: &str) -> Reply {
    let held_header = |held: u64| format!("bytes=0-{}", held.saturating_sub(1));
    let spec = range.strip_prefix("bytes ").unwrap_or("");
    let (span, total) = spec.split_once('/').unwrap_or(("", ""));
    let total: Option<u64> = total.parse().ok();
    if span == "*" {
        s.status_queries += 1;
    } else {
        let (a, b) = span.split_once('-').unwrap();
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
        if a != s.held || b + 1 - a != body_len {
            s.mismatches
                .push(format!("{range} while holding {}", s.held));
            return Reply::json(400, r#"{"error":{"message":"bad Content-Range"}}"#);
        }
        s.held = b + 1;
        s.accepted.push((a, sha.to_string()));
        if s.lose_answer_of == Some(a) {
            s.lose_answer_of = None;
            return Reply::json(503, r#"{"error":{"message":"backend error"}}"#);
        }
    }
    match total {
        Some(t) if t == s.held => Reply::json(
            200,
            &format!(
                r#"{{"name":"base/up.bin","size":"{t}","generation":"17","etag":"e","updated":"2026-01-01T00:00:00Z"}}"#
            ),
        ),
        _ if s.held == 0 => Reply::new(308, ""),
        _ => Reply::new(308, "").header("range", &held_header(s.held)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_resumable_session_resumes_after_resets_and_lost_answers_by_asking_its_status() {
    const CHUNK: u64 = 256 * 1024;
    let state = Arc::new(Mutex::new(SessionDouble {
        held: 0,
        accepted: Vec::new(),
        mismatches: Vec::new(),
        status_queries: 0,
        lose_answer_of: Some(2 * CHUNK),
    }));
    let front: Arc<Mutex<String>> = Arc::default();
    let (st, fr) = (state.clone(), front.clone());
    let double = HttpServer::start(move |req, _| {
        if req.method == "POST" && req.path.contains("uploadType=resumable") {
            let loc = format!("{}/upload/session-1", fr.lock().unwrap());
            return Reply::new(200, "").header("location", &loc);
        }
        if req.method == "PUT" && req.path == "/upload/session-1" {
            let range = req.header("content-range").unwrap_or("").to_string();
            return session_reply(
                &mut st.lock().unwrap(),
                &range,
                req.body_len,
                &req.body_sha256,
            );
        }
        Reply::json(404, r#"{"error":{"message":"no such thing"}}"#)
    });
    // The 2nd chunk PUT is reset before it reaches the double (nothing stored); the 3rd is stored
    // but answered 503 by the double itself.
    let proxy = FaultProxy::start(
        &double.url,
        Faults::new()
            .only_methods(&["PUT"])
            .reset_every(2)
            .max_faults(1),
    );
    *front.lock().unwrap() = proxy.endpoint.clone();
    let store = open_via(&proxy, "double-bucket", &[]).await;

    let data = common::noise(5 * CHUNK as usize + 1000, 9);
    let up = store
        .inner
        .put_multipart(&store.path("up.bin").unwrap())
        .await
        .unwrap();
    // One chunk per part, so each chunk is its own request.
    let mut w = WriteMultipart::new_with_chunk_size(up, CHUNK as usize);
    w.write(&data);
    let done = w.finish().await;
    let s = state.lock().unwrap();
    assert!(done.is_ok(), "upload failed: {:?}", done.err());
    assert_eq!(proxy.reset(), 1, "{:?}", proxy.log());
    assert!(
        s.mismatches.is_empty(),
        "bytes resent or skipped: {:?}",
        s.mismatches
    );
    assert!(
        s.status_queries >= 2,
        "status queries: {}",
        s.status_queries
    );
    assert_eq!(s.held, data.len() as u64);
    // Every byte stored once, in order, and the right bytes.
    let mut at = 0u64;
    for (start, sha) in &s.accepted {
        assert_eq!(*start, at);
        let end = (at + CHUNK).min(data.len() as u64);
        let want = hex(&Sha256::digest(&data[at as usize..end as usize]));
        assert_eq!(sha, &want, "chunk at {at}");
        at = end;
    }
    assert_eq!(at, data.len() as u64);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_stall_ends_in_a_timeout_error_naming_the_host() {
    let Some(gcs) = common::gcs::gcs() else {
        return;
    };
    let bucket = gcs.unique_bucket("stall");
    gcs.put(&bucket, "base/x", b"x");
    let proxy = FaultProxy::start(&gcs.endpoint, Faults::new().stall_every(1));
    let store = open_via(&proxy, &bucket, &[("timeout", "2s")]).await;
    let err = store
        .get("x")
        .await
        .expect_err("a stalled server cannot answer");
    assert_eq!(err.kind, ErrorKind::Timeout, "{}", err.message);
    let host = proxy.addr.to_string();
    assert!(err.message.contains(&host), "names {host}: {}", err.message);
    assert!(
        err.message.contains("2s"),
        "names the limit: {}",
        err.message
    );
    // Retried (metadata GET is idempotent), each attempt held by the proxy.
    let stalled = proxy
        .log()
        .iter()
        .filter(|r| r.outcome == Outcome::Stalled)
        .count();
    assert_eq!(stalled, 4, "{:?}", proxy.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_403_404_412_are_not_retried_and_have_clear_kinds() {
    let Some(gcs) = common::gcs::gcs() else {
        return;
    };
    let bucket = gcs.unique_bucket("refusals");
    gcs.put(&bucket, "base/x", b"x");
    let proxy = FaultProxy::start(&gcs.endpoint, Faults::new());
    let store = open_via(&proxy, &bucket, &[]).await;
    for (status, kind) in [
        (403, ErrorKind::Auth),
        (404, ErrorKind::NotFound),
        (412, ErrorKind::Conflict),
    ] {
        proxy.set_faults(Faults::new().fail_every(1).fail_status(status));
        proxy.clear();
        let err = store.get("x").await.expect_err("every request is refused");
        assert_eq!(err.kind, kind, "HTTP {status}: {}", err.message);
        assert!(err.message.contains(&status.to_string()), "{}", err.message);
        assert_eq!(proxy.seen(), 1, "HTTP {status} retried: {:?}", proxy.log());

        proxy.clear();
        let err = store
            .put("y", Bytes::from_static(b"y"))
            .await
            .expect_err("every request is refused");
        assert_eq!(err.kind, kind, "put, HTTP {status}: {}", err.message);
        assert_eq!(
            proxy.seen(),
            1,
            "put, HTTP {status} retried: {:?}",
            proxy.log()
        );
    }
}
