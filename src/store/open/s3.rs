//! `s3://bucket/prefix`: object_store's S3 client with ferry's options, credentials and ACLs.

use super::*;

/// What [`open_s3`] returns: the store, its updatable credentials, and with `acl_from_bucket`
/// the ACL state to fill with GetBucketAcl at the bucket endpoint.
pub(super) type S3Opened = (
    Store,
    Option<Arc<UpdatableAwsCredentials>>,
    Option<(Arc<s3_acl::AclState>, String)>,
);

pub(super) fn open_s3(u: &url::Url, display: &str, opts: &OpenOptions) -> Result<S3Opened> {
    let (bucket, prefix) = bucket_and_prefix(u);
    if bucket.len() < 3 {
        return Err(bad(
            display,
            "an S3 URL needs a bucket name of 3 or more characters: s3://bucket/prefix",
        ));
    }
    let acl_state = Arc::new(s3_acl::AclState::default());
    let acl_from_bucket = opt_bool(opts, "acl_from_bucket");
    if let Some(acl) = opts.values.get("acl") {
        if acl_from_bucket {
            return Err(bad(
                display,
                "acl and acl_from_bucket both say what the ACL of uploads is: give one",
            ));
        }
        if !S3_CANNED_ACLS.contains(&acl.as_str()) {
            return Err(bad(display, format!("acl '{acl}' is not an S3 canned ACL"))
                .hint(format!("canned ACLs: {}", S3_CANNED_ACLS.join(", "))));
        }
        acl_state.headers.write().unwrap().insert(
            "x-amz-acl",
            reqwest::header::HeaderValue::from_str(acl).map_err(|e| bad(display, e))?,
        );
    }
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .with_retry(retry_config())
        .with_client_options(s3_client_options(opts, display)?)
        .with_http_connector(naming_timeouts(
            s3_acl::AclConnector(acl_state.clone()),
            opts,
            display,
        )?)
        // Conditional PUTs (If-None-Match / If-Match, on AWS since 2024) for the run lease of a
        // state on S3; plain PUTs are unchanged. `aws_conditional_put` below overrides it.
        .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
    for (k, v) in &opts.values {
        b = match k.as_str() {
            "layout" | "acl" | "acl_from_bucket" | "ca_file" => b,
            // In the client options (s3_client_options).
            "timeout" | "connect_timeout" => b,
            "sse_c_key" => {
                use base64::Engine;
                b.with_ssec_encryption(
                    base64::engine::general_purpose::STANDARD.encode(v.as_bytes()),
                )
            }
            "endpoint" => b.with_endpoint(v),
            "region" => b.with_region(v),
            "access_key_id" => b.with_access_key_id(v),
            "secret_access_key" => b.with_secret_access_key(v),
            "session_token" => b.with_token(v),
            "allow_http" => b.with_allow_http(opt_bool(opts, "allow_http")),
            "virtual_hosted_style" => b.with_virtual_hosted_style_request(opt_bool(opts, k)),
            "skip_signature" => b.with_skip_signature(opt_bool(opts, k)),
            "unsigned_payload" => b.with_unsigned_payload(opt_bool(opts, k)),
            other => match other.parse::<AmazonS3ConfigKey>() {
                Ok(key) => b.with_config(key, v),
                Err(_) => return Err(unknown_option(display, other, "an S3")),
            },
        };
    }
    if std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true" || v == "1")
        && !opts.values.contains_key("allow_http")
    {
        b = b.with_allow_http(true);
    }
    // The endpoint the builder will use, wherever it was given (the option, `aws_endpoint*`
    // options, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS_ENDPOINT).
    let endpoint_set = effective_endpoint(&b).is_some();
    if endpoint_set && !opts.values.contains_key("virtual_hosted_style") {
        // Custom endpoints (MinIO, Ceph RGW, s3s) are addressed path-style.
        b = b.with_virtual_hosted_style_request(false);
    }
    if b.get_config_value(&AmazonS3ConfigKey::Region).is_none() {
        b = b.with_region("us-east-1");
    }
    b = virtual_hosted(b, opts, &bucket)?;
    let endpoint = effective_endpoint(&b);
    let (unsigned, crc) =
        aws_payload_defaults(endpoint.is_some(), opts, |k| std::env::var_os(k).is_some());
    if unsigned {
        b = b.with_unsigned_payload(true);
    }
    if crc {
        b = b.with_checksum_algorithm(object_store::aws::Checksum::CRC64NVME);
    }
    let unsigned_now = b
        .get_config_value(&AmazonS3ConfigKey::UnsignedPayload)
        .is_some_and(|v| v == "true");
    if unsigned_now
        && let Some(e) = &endpoint
        && !e.trim().to_ascii_lowercase().starts_with("https://")
    {
        let warning = format!(
            "store {display}: unsigned_payload over plain http: nothing protects the request \
             bodies in transit (use it on a trusted network, or with verify = \"checksum\")"
        );
        tracing::warn!("{warning}");
    }
    // Keys given as options go through a provider ferry owns, so that they can be replaced
    // while the store is in use (short-lived session credentials); without them object_store's
    // own chain (environment, profile, IMDS) applies as before.
    let creds = match (
        opts.values.get("access_key_id"),
        opts.values.get("secret_access_key"),
    ) {
        (Some(id), Some(secret)) if !opt_bool(opts, "skip_signature") => {
            let c = UpdatableAwsCredentials::new(
                id,
                secret,
                opts.values.get("session_token").map(String::as_str),
            );
            b = b.with_credentials(c.clone());
            Some(c)
        }
        _ => None,
    };
    // Where GetBucketAcl goes: object_store's bucket endpoint (AmazonS3Builder::build).
    let region = b
        .get_config_value(&AmazonS3ConfigKey::Region)
        .unwrap_or_else(|| "us-east-1".into());
    let virtual_style = b
        .get_config_value(&AmazonS3ConfigKey::VirtualHostedStyleRequest)
        .is_some_and(|v| v == "true");
    let bucket_endpoint = match (
        b.get_config_value(&AmazonS3ConfigKey::Endpoint),
        virtual_style,
    ) {
        (Some(e), true) => e,
        (Some(e), false) => format!("{}/{bucket}", e.trim_end_matches('/')),
        (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
        (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
    };
    let s3 = b.build().map_err(|e| bad(display, e))?;
    let signing = (!opt_bool(opts, "skip_signature")).then(|| s3_acl::Signing {
        credentials: s3.credentials().clone(),
        region,
    });
    let _ = acl_state.signing.set(signing);
    let store = Store {
        inner: with_prefix(Arc::new(s3), &prefix),
        display: display.to_string(),
        backend: Backend::S3,
        uploads: Some(crate::store::s3_uploads::Target::new(
            display,
            acl_state.clone(),
            &bucket_endpoint,
            &prefix,
        )),
    };
    let acl = acl_from_bucket.then_some((acl_state, bucket_endpoint));
    Ok((store, creds, acl))
}

/// S3 canned ACLs (the `x-amz-acl` values of PutObject and CreateMultipartUpload).
pub(super) const S3_CANNED_ACLS: &[&str] = &[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
];

/// [`client_options`] plus loopback resolution of `*.localhost` endpoints (see
/// [`crate::store::vhost::LocalhostResolver`]) and the extra CA roots. The ACL of uploads is not a
/// default header (those go on every request): [`s3_acl::AclConnector`] adds it to the
/// object-creating requests only.
pub(super) fn s3_client_options(opts: &OpenOptions, display: &str) -> Result<ClientOptions> {
    let mut c = client_options(opts, display)?;
    if let Some(ep) = opts.values.get("endpoint")
        && crate::store::vhost::is_localhost_endpoint(ep)
    {
        c = c.with_dns_resolver(crate::store::vhost::localhost_resolver());
    }
    // Extra roots: the `ca_file` option, else AWS_CA_BUNDLE (as the AWS CLI reads it).
    let ca = crate::store::tls::ca_source(
        opts.values.get("ca_file").map(String::as_str),
        &["AWS_CA_BUNDLE"],
    );
    if let Some(src) = ca {
        c = crate::store::tls::add_roots(c, &src, display)?;
    }
    Ok(c)
}

/// With `virtual_hosted_style` and a bucketless `endpoint`, addresses `<bucket>.<host>` (or
/// path-style for an IP host), see [`crate::store::vhost::bucket_endpoint`].
pub(super) fn virtual_hosted(
    b: AmazonS3Builder,
    opts: &OpenOptions,
    bucket: &str,
) -> Result<AmazonS3Builder> {
    let Some(ep) = opts.values.get("endpoint") else {
        return Ok(b);
    };
    if !opt_bool(opts, "virtual_hosted_style") {
        return Ok(b);
    }
    Ok(match crate::store::vhost::bucket_endpoint(ep, bucket)? {
        crate::store::vhost::Addressing::Virtual(e) => b.with_endpoint(e),
        crate::store::vhost::Addressing::PathStyle => b.with_virtual_hosted_style_request(false),
    })
}

/// The endpoint the built store will send to: `aws_endpoint_url_s3` / `AWS_ENDPOINT_URL_S3` first,
/// as `AmazonS3Builder::build` takes it, else `endpoint` / `AWS_ENDPOINT_URL` / `AWS_ENDPOINT`.
/// None means AWS itself.
fn effective_endpoint(b: &AmazonS3Builder) -> Option<String> {
    b.get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| b.get_config_value(&AmazonS3ConfigKey::Endpoint))
}

/// What a store sends with its request bodies when the options do not say: `(unsigned payload,
/// CRC64NVME checksum header)`. To AWS itself (no custom endpoint, so always https) bodies go as
/// UNSIGNED-PAYLOAD with a signed `x-amz-checksum-crc64nvme`, the condition under which botocore
/// drops body signing over https (`S3SigV4Auth._should_sha256_sign_payload`: https and a
/// checksum header); hashing each body with SHA-256 was 41% of ferry's CPU on large uploads. A
/// custom endpoint (MinIO, Ceph RGW, s3s) keeps signed bodies and no checksum header, since not
/// every S3-compatible server knows CRC64NVME. `unsigned_payload` / `aws_unsigned_payload` /
/// `AWS_UNSIGNED_PAYLOAD` and `aws_checksum_algorithm` / `AWS_CHECKSUM_ALGORITHM` override it.
fn aws_payload_defaults(
    custom_endpoint: bool,
    opts: &OpenOptions,
    env_set: impl Fn(&str) -> bool,
) -> (bool, bool) {
    if custom_endpoint {
        return (false, false);
    }
    let given = |keys: &[&str], env: &str| {
        keys.iter().any(|k| opts.values.contains_key(*k)) || env_set(env)
    };
    let unsigned = !given(
        &["unsigned_payload", "aws_unsigned_payload"],
        "AWS_UNSIGNED_PAYLOAD",
    );
    let crc = unsigned && !given(&["aws_checksum_algorithm"], "AWS_CHECKSUM_ALGORITHM");
    (unsigned, crc)
}

#[cfg(test)]
mod payload_tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> OpenOptions {
        let mut o = OpenOptions::default();
        for (k, v) in pairs {
            o.values.insert(k.to_string(), v.to_string());
        }
        o
    }

    #[test]
    fn aws_itself_gets_unsigned_bodies_with_a_crc64nvme_checksum() {
        assert_eq!(
            aws_payload_defaults(false, &opts(&[]), |_| false),
            (true, true)
        );
    }

    #[test]
    fn a_custom_endpoint_keeps_signed_bodies_and_no_checksum() {
        assert_eq!(
            aws_payload_defaults(true, &opts(&[]), |_| false),
            (false, false)
        );
    }

    #[test]
    fn the_endpoint_is_the_one_the_builder_sends_to() {
        assert_eq!(effective_endpoint(&AmazonS3Builder::new()), None);
        let b = AmazonS3Builder::new().with_endpoint("http://a:9000");
        assert_eq!(effective_endpoint(&b).as_deref(), Some("http://a:9000"));
        // AWS_ENDPOINT_URL_S3 wins in AmazonS3Builder::build, so it wins here too.
        let b = b.with_config(AmazonS3ConfigKey::S3Endpoint, "https://minio:9000");
        assert_eq!(
            effective_endpoint(&b).as_deref(),
            Some("https://minio:9000")
        );
    }

    #[test]
    fn options_and_environment_override_the_defaults() {
        for o in [
            opts(&[("unsigned_payload", "false")]),
            opts(&[("aws_unsigned_payload", "false")]),
        ] {
            assert_eq!(aws_payload_defaults(false, &o, |_| false), (false, false));
        }
        assert_eq!(
            aws_payload_defaults(false, &opts(&[]), |k| k == "AWS_UNSIGNED_PAYLOAD"),
            (false, false)
        );
        let sha = opts(&[("aws_checksum_algorithm", "sha256")]);
        assert_eq!(aws_payload_defaults(false, &sha, |_| false), (true, false));
        assert_eq!(
            aws_payload_defaults(false, &opts(&[]), |k| k == "AWS_CHECKSUM_ALGORITHM"),
            (true, false)
        );
    }
}
