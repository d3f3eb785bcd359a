//! Virtual-hosted S3 addressing for custom endpoints, and name resolution of `*.localhost`.
//!
//! object_store treats an endpoint given with `virtual_hosted_style_request = true` as the
//! *bucket* endpoint (`AmazonS3Builder::build`: `(Some(endpoint), _, true) => endpoint.clone()`),
//! so a bucketless endpoint such as `http://minio:9000` would send every request to the server
//! root, where a listing answers with the bucket list and parses as an empty object listing.
//! S3 SDKs (boto3, which Seafile's seafobj uses: `objwrapper/s3.py` `SeafS3Client.do_connect`,
//! `addressing_style = 'virtual'`) put the bucket in front of the host instead:
//! `scheme://<bucket>.<host>[:port]`, always: botocore prepends the bucket to the endpoint's
//! authority whatever the host already starts with (`botocore/utils.py`
//! `switch_to_virtual_host_style`: `host = bucket_name + '.' + global_endpoint`; the S3 endpoint
//! rules: `{url#scheme}://{Bucket}.{url#authority}{url#path}`), so bucket `seafile` on host
//! `seafile.example.com` is addressed as `seafile.seafile.example.com`, and a seafile.conf that
//! works with Seafile names the bucketless host. An endpoint whose host is an IP address stays path-style,
//! as the S3 endpoint rules shared by botocore and the other AWS SDKs do (a custom endpoint whose
//! parsed `url` has `isIp` gets `{scheme}://{authority}{normalizedPath}{bucket}`), since
//! `<bucket>.10.0.0.5` is no host name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use object_store::client::{DnsFuture, DnsResolver};

use crate::runtime::error::{ErrorKind, FerryError, Result};

/// How requests to a bucket on `endpoint` are addressed when virtual-hosted style is asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Addressing {
    /// `scheme://<bucket>.<host>[:port]` (object_store's bucket endpoint).
    Virtual(String),
    /// The host is an IP address: path-style on the endpoint as given.
    PathStyle,
}

/// The bucket endpoint for virtual-hosted requests to `bucket` on the bucketless `endpoint`
/// (the bucket is prepended even when the host already starts with `<bucket>.`, as botocore does).
pub fn bucket_endpoint(endpoint: &str, bucket: &str) -> Result<Addressing> {
    let bad = |msg: String| {
        FerryError::new(
            ErrorKind::InvalidInput,
            format!("S3 endpoint {endpoint}: {msg}"),
        )
    };
    let mut u = url::Url::parse(endpoint).map_err(|e| bad(format!("not a URL ({e})")))?;
    match u.host() {
        Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_)) => return Ok(Addressing::PathStyle),
        Some(url::Host::Domain(_)) => {}
        None => return Err(bad("no host".into())),
    }
    let host = u.host_str().unwrap_or("").to_string();
    if bucket.contains(['/', ':', '@']) || bucket.is_empty() {
        return Err(bad(format!(
            "bucket '{bucket}' cannot be part of a host name"
        )));
    }
    u.set_host(Some(&format!("{bucket}.{host}")))
        .map_err(|e| bad(format!("bucket '{bucket}' makes no valid host name ({e})")))?;
    Ok(Addressing::Virtual(
        u.as_str().trim_end_matches('/').to_string(),
    ))
}

/// True when the endpoint's host is `localhost` or a name below it.
pub fn is_localhost_endpoint(endpoint: &str) -> bool {
    url::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(is_localhost_name))
        .unwrap_or(false)
}

fn is_localhost_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// Resolves `localhost` and every name below it to the loopback addresses (RFC 6761 section
/// 6.3: "name resolution APIs and libraries SHOULD recognize localhost names as special and
/// SHOULD always return the IP loopback address"; curl and browsers do the same), other names
/// through the system resolver. glibc's `files dns` lookup does not know `bucket.localhost`,
/// so without this a virtual-hosted endpoint on a local S3 server could not be reached.
#[derive(Debug)]
pub struct LocalhostResolver;

impl DnsResolver for LocalhostResolver {
    fn resolve(&self, host: &str) -> DnsFuture {
        let host = host.to_string();
        Box::pin(async move {
            if is_localhost_name(&host) {
                return Ok(vec![
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(Ipv6Addr::LOCALHOST),
                ]);
            }
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

pub fn localhost_resolver() -> Arc<dyn DnsResolver> {
    Arc::new(LocalhostResolver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_goes_in_front_of_the_host() {
        assert_eq!(
            bucket_endpoint("http://localhost:9000", "sea-blocks").unwrap(),
            Addressing::Virtual("http://sea-blocks.localhost:9000".into())
        );
        assert_eq!(
            bucket_endpoint("https://oss-cn-hangzhou.aliyuncs.com/", "b1").unwrap(),
            Addressing::Virtual("https://b1.oss-cn-hangzhou.aliyuncs.com".into())
        );
        // botocore prepends the bucket whatever the host starts with.
        assert_eq!(
            bucket_endpoint("https://b1.s3.example.com", "b1").unwrap(),
            Addressing::Virtual("https://b1.b1.s3.example.com".into())
        );
        assert_eq!(
            bucket_endpoint("http://192.168.1.123:8080", "b1").unwrap(),
            Addressing::PathStyle
        );
        assert!(is_localhost_endpoint("http://b.localhost:1"));
        assert!(!is_localhost_endpoint("http://localhost.example.com:1"));
    }
}
