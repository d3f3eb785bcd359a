//! Multipart uploads a killed copy left open on S3: listed (ListMultipartUploads) and aborted
//! (AbortMultipartUpload) by the next copy, so that their parts stop being stored.
//!
//! object_store has no call for either, so ferry sends them itself, to the bucket endpoint the
//! store uses, with the store's HTTP client (its CA roots, `allow_http`, timeouts) and signed as
//! the store signs ([`s3_acl::sign`]: credentials, session token, region).
//!
//! Which store is an S3 store with what endpoint: `Store::uploads`, set by `open_s3`
//! ([`Target::new`]). A store whose keys are rewritten (`layout = "seafile-fs"`) has none, and so
//! is never cleaned: its keys in the bucket are not the copy's keys.
//!
//! What counts as stale: an upload initiated before the first copy of this process started
//! ([`copies_started`]), in the server's clock (the offset is read from the listing's `Date`
//! header), less [`MARGIN`]. The copy engine (`store/copy/stale.rs`) then aborts only the uploads
//! of keys it is about to write.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use object_store::client::HttpRequestBody;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::open::s3_acl::{self, AclState};
use crate::runtime::error::{ErrorKind, FerryError, Result};

/// What the server's clock may be ahead of the offset read from its `Date` header (whole
/// seconds, stamped before the answer reached us, so the offset read is never too large).
pub const MARGIN: Duration = Duration::from_secs(1);

/// The margin when the server sends no `Date` header (no offset known).
pub const MARGIN_NO_DATE: Duration = Duration::from_secs(300);

/// Pages of 1000 uploads at most (a bound against a server that never ends its listing).
const MAX_PAGES: usize = 10_000;

/// Attempts of one request (transport errors, 5xx other than 501, 429).
const ATTEMPTS: u32 = 3;

/// S3's URI encoding: everything but the unreserved characters.
const AWS_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where an S3 store's uploads are listed and aborted.
#[derive(Debug)]
pub struct Target {
    state: Arc<AclState>,
    /// `https://bucket.host` or `http://host/bucket`, no trailing `/`.
    bucket_endpoint: String,
    /// The store's prefix in the bucket with a trailing `/`, or empty.
    key_prefix: String,
    display: String,
}

impl Target {
    /// The target of an S3 store shown as `display`, at `bucket_endpoint`, whose keys are below
    /// `prefix`.
    pub fn new(
        display: &str,
        state: Arc<AclState>,
        bucket_endpoint: &str,
        prefix: &str,
    ) -> Arc<Target> {
        let key_prefix = if prefix.is_empty() {
            String::new()
        } else {
            // As object_store's PrefixStore joins it to the store's keys.
            format!("{}/", object_store::path::Path::from(prefix).as_ref())
        };
        Arc::new(Target {
            state,
            bucket_endpoint: bucket_endpoint.trim_end_matches('/').to_string(),
            key_prefix,
            display: display.to_string(),
        })
    }
}

/// When the first copy of this process started (the same for every later copy).
pub fn copies_started() -> SystemTime {
    static FIRST: OnceLock<SystemTime> = OnceLock::new();
    *FIRST.get_or_init(SystemTime::now)
}

/// One open multipart upload; `key` is relative to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated: DateTime<Utc>,
}

/// What a ListMultipartUploads of the store's prefix answered.
#[derive(Debug)]
pub enum Listing {
    /// The open uploads, and the server's clock minus ours when it sent a `Date` header.
    Uploads {
        uploads: Vec<OpenUpload>,
        clock_offset: Option<chrono::Duration>,
    },
    /// The server does not list uploads to us (NotImplemented, 405, AccessDenied): why.
    Refused(String),
}

/// The instant before which an upload is stale, in the server's clock.
pub fn cutoff(started: SystemTime, clock_offset: Option<chrono::Duration>) -> DateTime<Utc> {
    let started = DateTime::<Utc>::from(started);
    match clock_offset {
        Some(off) => started + off - chrono::Duration::from_std(MARGIN).unwrap_or_default(),
        None => started - chrono::Duration::from_std(MARGIN_NO_DATE).unwrap_or_default(),
    }
}

/// The uploads initiated before `cutoff`, by key.
pub fn stale_by_key(
    uploads: Vec<OpenUpload>,
    cutoff: DateTime<Utc>,
) -> HashMap<String, Vec<OpenUpload>> {
    let mut out: HashMap<String, Vec<OpenUpload>> = HashMap::new();
    for u in uploads.into_iter().filter(|u| u.initiated < cutoff) {
        out.entry(u.key.clone()).or_default().push(u);
    }
    out
}

/// One answer: status, body, and the server's clock minus ours (from `Date`).
struct Answer {
    status: u16,
    body: String,
    clock_offset: Option<chrono::Duration>,
}

impl Target {
    pub fn display(&self) -> &str {
        &self.display
    }

    fn error(&self, kind: ErrorKind, what: &str, msg: impl std::fmt::Display) -> FerryError {
        FerryError::new(kind, format!("store {}: {what}: {msg}", self.display))
    }

    /// One signed request with an empty body, retried on transport errors and 5xx/429.
    async fn send(&self, method: &str, url: &str, what: &str) -> Result<Answer> {
        let client =
            self.state.plain.get().ok_or_else(|| {
                self.error(ErrorKind::Internal, what, "the store has no HTTP client")
            })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = http::Request::builder()
                .method(method)
                .uri(url)
                .body(HttpRequestBody::empty())
                .map_err(|e| self.error(ErrorKind::InvalidInput, what, e))?;
            s3_acl::sign(&self.state, &mut req)
                .await
                .map_err(|(kind, e)| self.error(kind, what, format!("signing: {e}")))?;
            let sent = client.execute(req).await;
            let received = Utc::now();
            let retry = match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let clock_offset = resp
                        .headers()
                        .get("date")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| httpdate::parse_http_date(v).ok())
                        .map(|d| DateTime::<Utc>::from(d) - received);
                    let body = match resp.into_body().bytes().await {
                        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                        Err(e) => {
                            if attempt < ATTEMPTS {
                                tokio::time::sleep(backoff(attempt)).await;
                                continue;
                            }
                            return Err(self.error(
                                ErrorKind::Unavailable,
                                what,
                                format!("reading the answer: {e}"),
                            ));
                        }
                    };
                    let transient = status == 429 || (status >= 500 && status != 501);
                    if !transient || attempt >= ATTEMPTS {
                        return Ok(Answer {
                            status,
                            body,
                            clock_offset,
                        });
                    }
                    format!("{status} {}", error_code(&body))
                }
                Err(e) if attempt < ATTEMPTS => e.to_string(),
                Err(e) => return Err(self.error(ErrorKind::Unavailable, what, e)),
            };
            tracing::debug!("store {}: {what}: {retry}; retrying", self.display);
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    /// Every open upload below the store's prefix plus `prefix` (relative to the store).
    pub async fn list(&self, prefix: Option<&str>) -> Result<Listing> {
        let what = "listing open multipart uploads (ListMultipartUploads)";
        let full_prefix = format!("{}{}", self.key_prefix, prefix.unwrap_or(""));
        let mut uploads = Vec::new();
        let mut markers: Option<(String, String)> = None;
        let mut clock_offset = None;
        for _ in 0..MAX_PAGES {
            let mut url = format!("{}?uploads", self.bucket_endpoint);
            if !full_prefix.is_empty() {
                url.push_str(&format!("&prefix={}", enc(&full_prefix)));
            }
            if let Some((k, u)) = &markers {
                url.push_str(&format!("&key-marker={}", enc(k)));
                if !u.is_empty() {
                    url.push_str(&format!("&upload-id-marker={}", enc(u)));
                }
            }
            let a = self.send("GET", &url, what).await?;
            let code = error_code(&a.body);
            if matches!(a.status, 405 | 501 | 403)
                || matches!(
                    code.as_str(),
                    "NotImplemented" | "MethodNotAllowed" | "AccessDenied"
                )
            {
                return Ok(Listing::Refused(format!("{} {code}", a.status)));
            }
            if a.status != 200 {
                return Err(self.error(
                    ErrorKind::Unavailable,
                    what,
                    format!("{} {code}", a.status),
                ));
            }
            clock_offset = clock_offset.or(a.clock_offset);
            let page = parse_page(&a.body).map_err(|e| {
                self.error(
                    ErrorKind::Internal,
                    what,
                    format!("not a ListMultipartUploadsResult: {e}"),
                )
            })?;
            for (key, upload_id, initiated) in page.uploads {
                // Below a prefix "a" are also "ab/...": keep only the store's own keys.
                if let Some(rel) = key.strip_prefix(&self.key_prefix) {
                    uploads.push(OpenUpload {
                        key: rel.to_string(),
                        upload_id,
                        initiated,
                    });
                }
            }
            match page.next {
                Some(next) if markers.as_ref() != Some(&next) => markers = Some(next),
                _ => {
                    return Ok(Listing::Uploads {
                        uploads,
                        clock_offset,
                    });
                }
            }
        }
        Err(self.error(
            ErrorKind::Internal,
            what,
            format!("more than {MAX_PAGES} pages"),
        ))
    }

    /// AbortMultipartUpload. False when the upload was no longer there (NoSuchUpload).
    pub async fn abort(&self, u: &OpenUpload) -> Result<bool> {
        let what = format!(
            "aborting the multipart upload {} of '{}' (AbortMultipartUpload)",
            u.upload_id, u.key
        );
        let key = format!("{}{}", self.key_prefix, u.key);
        let path: Vec<String> = key
            .split('/')
            .map(|seg| utf8_percent_encode(seg, AWS_ENCODE).to_string())
            .collect();
        let url = format!(
            "{}/{}?uploadId={}",
            self.bucket_endpoint,
            path.join("/"),
            enc(&u.upload_id)
        );
        let a = self.send("DELETE", &url, &what).await?;
        match a.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            s => {
                let code = error_code(&a.body);
                let kind = if s == 403 {
                    ErrorKind::Auth
                } else {
                    ErrorKind::Unavailable
                };
                Err(self.error(kind, &what, format!("{s} {code}")))
            }
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 << attempt.min(5))
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, AWS_ENCODE).to_string()
}

/// The `<Code>` of an S3 error answer (empty when there is none).
fn error_code(body: &str) -> String {
    tag(body, "Code").unwrap_or_default()
}

fn tag(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(unescape(body[start..end].trim()))
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let ch = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// One page of a ListMultipartUploadsResult.
#[derive(Debug, PartialEq)]
struct Page {
    /// (key, upload id, initiated).
    uploads: Vec<(String, String, DateTime<Utc>)>,
    /// (NextKeyMarker, NextUploadIdMarker) when the listing is truncated.
    next: Option<(String, String)>,
}

fn parse_page(xml: &str) -> std::result::Result<Page, String> {
    if !xml.contains("ListMultipartUploadsResult") {
        return Err("no <ListMultipartUploadsResult>".into());
    }
    let mut uploads = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<Upload>") {
        let end = rest[i..]
            .find("</Upload>")
            .ok_or("an <Upload> without its end")?
            + i;
        let body = &rest[i..end];
        let key = tag(body, "Key").ok_or("an <Upload> without <Key>")?;
        let id = tag(body, "UploadId").ok_or("an <Upload> without <UploadId>")?;
        let initiated = tag(body, "Initiated").ok_or("an <Upload> without <Initiated>")?;
        let initiated = DateTime::parse_from_rfc3339(&initiated)
            .map_err(|e| format!("<Initiated>{initiated}</Initiated>: {e}"))?
            .with_timezone(&Utc);
        uploads.push((key, id, initiated));
        rest = &rest[end..];
    }
    let truncated = tag(xml, "IsTruncated").is_some_and(|v| v == "true");
    let next = if truncated {
        let key = tag(xml, "NextKeyMarker")
            .filter(|k| !k.is_empty())
            .or_else(|| uploads.last().map(|u| u.0.clone()))
            .ok_or("a truncated listing without NextKeyMarker")?;
        let id = tag(xml, "NextUploadIdMarker").unwrap_or_default();
        Some((key, id))
    } else {
        None
    };
    Ok(Page { uploads, next })
}

#[cfg(test)]
mod tests;
