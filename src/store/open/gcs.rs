//! `gs://bucket/prefix`: ferry's GCS JSON API client with object_store's credential chain.

use super::*;

/// `gs://bucket/prefix`. Requests go through ferry's JSON API client ([`crate::store::gcs`]); the
/// credentials come from object_store's GCS chain (options, `GOOGLE_*` variables, ADC, the
/// metadata server) unless the store is anonymous. The endpoint is the `endpoint` option, else
/// `GOOGLE_BASE_URL`, else `STORAGE_EMULATOR_HOST` (the variable Google's client libraries read
/// for an emulator, which also makes them send no credentials), else
/// `https://storage.googleapis.com`.
pub(super) fn open_gcs(u: &url::Url, display: &str, opts: &OpenOptions) -> Result<Store> {
    let (bucket, prefix) = bucket_and_prefix(u);
    check_gcs_bucket(display, &bucket)?;
    let mut b = GoogleCloudStorageBuilder::from_env()
        .with_bucket_name(&bucket)
        .with_retry(retry_config())
        .with_client_options(client_options(opts, display)?);
    let mut endpoint = None;
    let mut anonymous = None;
    let mut page_size = crate::store::gcs::MAX_PAGE;
    let (connect_timeout, timeout) = timeouts(opts, display)?;
    let mut has_credentials = false;
    for (k, v) in &opts.values {
        b = match k.as_str() {
            "endpoint" | "base_url" | "google_base_url" => {
                endpoint = Some(v.clone());
                b
            }
            "anonymous" | "skip_signature" | "google_skip_signature" => {
                anonymous = Some(opt_bool(opts, k));
                b
            }
            "list_page_size" => {
                page_size = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=crate::store::gcs::MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        bad(
                            display,
                            format!("list_page_size must be 1 to 1000, not '{v}'"),
                        )
                    })?;
                b
            }
            "timeout" | "connect_timeout" => b, // timeouts() above
            "service_account" => {
                has_credentials = true;
                b.with_service_account_path(v)
            }
            "service_account_key" => {
                has_credentials = true;
                b.with_service_account_key(v)
            }
            "application_credentials" => {
                has_credentials = true;
                b.with_application_credentials(v)
            }
            "allow_http" | "layout" => b,
            other => match other.parse::<GoogleConfigKey>() {
                Ok(key) => {
                    has_credentials |= matches!(key, GoogleConfigKey::BearerToken);
                    b.with_config(key, v)
                }
                Err(_) => {
                    return Err(unknown_option(display, other, "a GCS"));
                }
            },
        };
    }
    let emulator = std::env::var("STORAGE_EMULATOR_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty());
    let endpoint = endpoint
        .or_else(|| b.get_config_value(&GoogleConfigKey::BaseUrl))
        .filter(|e| !e.trim().is_empty())
        .or_else(|| gcs_key_base_url(opts))
        .or_else(|| {
            emulator.as_ref().map(|h| {
                if h.contains("://") {
                    h.clone()
                } else {
                    format!("http://{h}")
                }
            })
        })
        .unwrap_or_else(|| "https://storage.googleapis.com".to_string());
    let endpoint_url = url::Url::parse(&endpoint)
        .ok()
        .filter(|e| matches!(e.scheme(), "http" | "https") && e.host_str().is_some())
        .ok_or_else(|| {
            bad(
                display,
                format!("endpoint '{endpoint}' is not an http(s) URL"),
            )
            .hint("for an emulator: endpoint = \"http://127.0.0.1:4443\", anonymous = true")
        })?;
    let skip_signature = b
        .get_config_value(&GoogleConfigKey::SkipSignature)
        .is_some_and(|v| matches!(v.as_str(), "true" | "1" | "yes"));
    let anonymous = anonymous.unwrap_or(skip_signature || (emulator.is_some() && !has_credentials));
    let auth = if anonymous {
        crate::store::gcs::Auth::Anonymous
    } else {
        if endpoint_url.scheme() == "http" && !opt_bool(opts, "allow_http") {
            return Err(bad(
                display,
                format!("will not send GCS credentials over plain HTTP to {endpoint}"),
            )
            .hint("use https, or set anonymous = true (emulators) or allow_http = true"));
        }
        let gcs = b.build().map_err(|e| bad(display, e))?;
        crate::store::gcs::Auth::Provider(gcs.credentials().clone())
    };
    let gcs = crate::store::gcs::GcsJson::new(
        &endpoint,
        &bucket,
        auth,
        page_size,
        connect_timeout,
        timeout,
    )
    .map_err(|e| bad(display, e))?;
    Ok(Store {
        inner: with_prefix(Arc::new(gcs), &prefix),
        display: display.to_string(),
        backend: Backend::Gcs,
        uploads: None,
    })
}

/// GCS bucket names: 3 to 63 characters (222 with dots), lowercase letters, digits, `-`, `_`
/// and `.`, starting and ending with a letter or digit
/// (<https://cloud.google.com/storage/docs/buckets#naming>).
pub(super) fn check_gcs_bucket(display: &str, bucket: &str) -> Result<()> {
    let ok_chars = bucket
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.'));
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let max = if bucket.contains('.') { 222 } else { 63 };
    if (3..=max).contains(&bucket.len())
        && ok_chars
        && ends(bucket.chars().next())
        && ends(bucket.chars().last())
    {
        Ok(())
    } else {
        Err(bad(
            display,
            format!("'{bucket}' is not a GCS bucket name (3-63 lowercase letters, digits, - _ .)"),
        )
        .hint("GCS URLs look like gs://bucket/prefix"))
    }
}

/// The `gcs_base_url` of a service-account key given inline (object_store's convention for
/// emulators, with `disable_oauth`; object_store `src/gcp/credential.rs`,
/// `ServiceAccountKey`).
pub(super) fn gcs_key_base_url(opts: &OpenOptions) -> Option<String> {
    let key = opts.values.get("service_account_key")?;
    let v: serde_json::Value = serde_json::from_str(key).ok()?;
    v.get("gcs_base_url")?.as_str().map(str::to_string)
}
