use super::*;
use std::sync::Mutex;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn a_page_as_aws_writes_it() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>p/b&amp;c.bin</NextKeyMarker><NextUploadIdMarker>id-2</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>p/a.bin</Key><UploadId>id-1</UploadId>
<Initiator><ID>x</ID><DisplayName>x</DisplayName></Initiator>
<Owner><ID>x</ID><DisplayName>x</DisplayName></Owner>
<StorageClass>STANDARD</StorageClass><Initiated>2026-12-06T10:00:00.000Z</Initiated></Upload>
  <Upload><Key>p/b&amp;c.bin</Key><UploadId>id-2</UploadId>
<StorageClass>STANDARD</StorageClass><Initiated>2026-12-06T10:00:01.500Z</Initiated></Upload>
</ListMultipartUploadsResult>"#;
    let p = parse_page(xml).unwrap();
    assert_eq!(
        p.uploads,
        vec![
            ("p/a.bin".into(), "id-1".into(), at("2026-12-06T10:00:00Z")),
            (
                "p/b&c.bin".into(),
                "id-2".into(),
                at("2026-12-06T10:00:01.5Z")
            ),
        ]
    );
    assert_eq!(p.next, Some(("p/b&c.bin".into(), "id-2".into())));
    let last = xml.replace("<IsTruncated>true", "<IsTruncated>false");
    assert_eq!(parse_page(&last).unwrap().next, None);
    assert!(parse_page("<Error><Code>NotImplemented</Code></Error>").is_err());
    assert_eq!(
        error_code("<Error><Code>NotImplemented</Code></Error>"),
        "NotImplemented"
    );
}

#[test]
fn only_uploads_before_the_cutoff_are_stale() {
    let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let start = DateTime::<Utc>::from(started);
    let up = |key: &str, id: &str, secs: i64| OpenUpload {
        key: key.into(),
        upload_id: id.into(),
        initiated: start + chrono::Duration::seconds(secs),
    };
    // The server's clock is 10 s ahead of ours.
    let c = cutoff(started, Some(chrono::Duration::seconds(10)));
    assert_eq!(c, start + chrono::Duration::seconds(9));
    let stale = stale_by_key(
        vec![
            up("a", "old", -3600),
            up("a", "old-too", 8),
            up("a", "during-the-run", 9),
            up("b", "during-the-run", 30),
        ],
        c,
    );
    assert_eq!(stale.len(), 1);
    let ids: Vec<&str> = stale["a"].iter().map(|u| u.upload_id.as_str()).collect();
    assert_eq!(ids, ["old", "old-too"]);
    // No Date header: a wide margin.
    assert_eq!(
        cutoff(started, None),
        start - chrono::Duration::seconds(300)
    );
}

/// A bucket endpoint answering two pages of uploads under `/b`, 501 under `/nl`, and 204 to
/// DELETEs; records "METHOD target" of each request.
async fn fake_s3() -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 16 << 10];
            let n = sock.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let mut words = req.split_whitespace();
            let (method, target) = (words.next().unwrap(), words.next().unwrap());
            log.lock().unwrap().push(format!("{method} {target}"));
            let upload = |key: &str, id: &str| {
                format!(
                    "<Upload><Key>{key}</Key><UploadId>{id}</UploadId>\
                     <Initiated>2026-12-06T10:00:00.000Z</Initiated></Upload>"
                )
            };
            let (status, body) = if method == "DELETE" {
                ("204 No Content", String::new())
            } else if target.starts_with("/nl") {
                (
                    "501 Not Implemented",
                    "<Error><Code>NotImplemented</Code></Error>".to_string(),
                )
            } else if !target.contains("key-marker=") {
                let ups = upload("base/a b.bin", "id+1") + &upload("basement/x", "id-x");
                (
                    "200 OK",
                    format!(
                        "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>\
                         <NextKeyMarker>basement/x</NextKeyMarker>\
                         <NextUploadIdMarker>id-x</NextUploadIdMarker>{ups}\
                         </ListMultipartUploadsResult>"
                    ),
                )
            } else {
                let ups = upload("base/c.bin", "id-2");
                (
                    "200 OK",
                    format!(
                        "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>{ups}\
                         </ListMultipartUploadsResult>"
                    ),
                )
            };
            let date = httpdate::fmt_http_date(SystemTime::now());
            let resp = format!(
                "HTTP/1.1 {status}\r\nDate: {date}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await.unwrap();
        }
    });
    (format!("http://{addr}"), seen)
}

fn target_at(bucket_endpoint: String) -> Target {
    use object_store::client::HttpConnector;
    let state = AclState::default();
    let client = object_store::client::ReqwestConnector::default()
        .connect(&object_store::ClientOptions::new().with_allow_http(true))
        .unwrap();
    state.plain.set(client).unwrap();
    state.signing.set(None).unwrap();
    Target {
        state: Arc::new(state),
        bucket_endpoint,
        key_prefix: "base/".into(),
        display: "s3://b/base".into(),
    }
}

#[tokio::test]
async fn pages_are_followed_and_uploads_aborted_by_key_and_id() {
    let (endpoint, seen) = fake_s3().await;
    let t = target_at(format!("{endpoint}/b"));
    let Listing::Uploads {
        uploads,
        clock_offset,
    } = t.list(None).await.unwrap()
    else {
        panic!("refused")
    };
    let keys: Vec<(&str, &str)> = uploads
        .iter()
        .map(|u| (u.key.as_str(), u.upload_id.as_str()))
        .collect();
    // "basement/x" is below the prefix "base" but not the store's.
    assert_eq!(keys, [("a b.bin", "id+1"), ("c.bin", "id-2")]);
    assert!(clock_offset.unwrap().num_seconds().abs() <= 2);
    assert!(t.abort(&uploads[0]).await.unwrap());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "GET /b?uploads&prefix=base%2F",
            "GET /b?uploads&prefix=base%2F&key-marker=basement%2Fx&upload-id-marker=id-x",
            "DELETE /b/base/a%20b.bin?uploadId=id%2B1",
        ]
    );
    let nl = target_at(format!("{endpoint}/nl"));
    match nl.list(Some("sub/")).await.unwrap() {
        Listing::Refused(why) => assert_eq!(why, "501 NotImplemented"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn entities_and_encoding() {
    assert_eq!(unescape("a&amp;b&#x20;c&#33;&lt;&bogus;"), "a&b c!<&bogus;");
    assert_eq!(enc("a b/c+d~e"), "a%20b%2Fc%2Bd~e");
}
