//! What ferry's GCS client reads from and makes of JSON API answers: error bodies, object
//! resources (<https://cloud.google.com/storage/docs/json_api/v1/objects#resource>), and the
//! mapping of HTTP statuses to object_store's error kinds (which ferry maps to its own).

use object_store::path::Path;
use object_store::{ObjectMeta, PutMode, PutResult, Result};
use reqwest::StatusCode;
use serde_json::Value;

use super::gcs::GcsError;

const STORE: &str = "GCS";

/// The `error.message` of a JSON API error body, else the body's first 300 characters.
pub(crate) fn error_text(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body)
        && let Some(m) = v.pointer("/error/message").and_then(Value::as_str)
    {
        return m.to_string();
    }
    let t: String = body.trim().chars().take(300).collect();
    if t.is_empty() { "(no body)".into() } else { t }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// A failed listing: a 404 there means the bucket itself is missing.
pub(crate) fn list_err(bucket: &str, e: GcsError) -> object_store::Error {
    if e.status == Some(StatusCode::NOT_FOUND) {
        return object_store::Error::NotFound {
            path: format!("gs://{bucket}"),
            source: Box::new(GcsError {
                status: e.status,
                message: format!("bucket '{bucket}' does not exist ({})", e.message),
            }),
        };
    }
    to_os("", e)
}

/// Maps a failed exchange to object_store's error kinds (which ferry maps to its own).
pub(crate) fn to_os(path: &str, e: GcsError) -> object_store::Error {
    let path = path.to_string();
    let source = Box::new(e);
    match source.status.map(|s| s.as_u16()) {
        Some(404) => object_store::Error::NotFound { path, source },
        Some(412) => object_store::Error::Precondition { path, source },
        Some(401) => object_store::Error::Unauthenticated { path, source },
        Some(403) => object_store::Error::PermissionDenied { path, source },
        _ => object_store::Error::Generic {
            store: STORE,
            source,
        },
    }
}

fn bad_answer(what: &str) -> GcsError {
    GcsError {
        status: None,
        message: format!("GCS answer without a valid {what}"),
    }
}

/// GCS sends 64-bit numbers as JSON strings (`"size": "123"`); accept numbers as well.
pub(crate) fn u64_field(v: &Value, name: &str) -> Option<u64> {
    match v.get(name)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

pub(crate) fn string_field(v: &Value, name: &str) -> Option<String> {
    match v.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An object resource (<https://cloud.google.com/storage/docs/json_api/v1/objects#resource>).
pub(crate) fn object_meta(v: &Value) -> std::result::Result<ObjectMeta, GcsError> {
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_answer("object name"))?;
    let updated = v
        .get("updated")
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .ok_or_else(|| bad_answer(&format!("'updated' time for {name}")))?;
    Ok(ObjectMeta {
        location: Path::parse(name).map_err(|e| GcsError {
            status: None,
            message: format!("GCS listed an object name ferry cannot use: {name:?} ({e})"),
        })?,
        last_modified: updated.with_timezone(&chrono::Utc),
        size: u64_field(v, "size").ok_or_else(|| bad_answer(&format!("size for {name}")))?,
        e_tag: string_field(v, "etag"),
        version: string_field(v, "generation"),
    })
}

pub(crate) fn put_result(v: &Value) -> PutResult {
    PutResult {
        e_tag: string_field(v, "etag"),
        version: string_field(v, "generation"),
        extensions: Default::default(),
    }
}

/// The `ifGenerationMatch` value a put mode asks for.
pub(crate) fn generation_match(path: &Path, mode: &PutMode) -> Result<Option<String>> {
    Ok(match mode {
        PutMode::Overwrite => None,
        PutMode::Create => Some("0".into()),
        PutMode::Update(v) => {
            Some(
                v.version
                    .clone()
                    .ok_or_else(|| object_store::Error::Precondition {
                        path: path.to_string(),
                        source: "a GCS conditional update needs the object's generation".into(),
                    })?,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_resources_parse_with_string_numbers() {
        let v: Value = serde_json::json!({
            "name": "a/b", "size": "12", "updated": "2024-01-02T03:04:05.678Z",
            "etag": "CKih", "generation": "1700000000000000"
        });
        let m = object_meta(&v).unwrap();
        assert_eq!((m.location.as_ref(), m.size), ("a/b", 12));
        assert_eq!(m.version.as_deref(), Some("1700000000000000"));
        assert!(object_meta(&serde_json::json!({"name": "x", "size": "1"})).is_err());
    }
}
