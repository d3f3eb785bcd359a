//! Object ACLs on S3 uploads, sent only on the requests that create an object (PutObject,
//! CopyObject, CreateMultipartUpload), which are the only ones S3 reads them on.
//!
//! object_store has no per-request ACL setting, and its client's default headers go on every
//! request (GET, HEAD, LIST and UploadPart too). So the S3 store is built with an
//! [`AclConnector`]: its HTTP service adds the ACL headers to object-creating requests only and
//! signs such a request again (SigV4 must cover every `x-amz-*` header), with the store's own
//! credentials, region and payload hash.
//!
//! Two ways to say what the ACL is:
//! - `acl = "<canned ACL>"`: `x-amz-acl`;
//! - `acl_from_bucket = true`: what Apache Druid's S3 pusher sends (S3Utils.
//!   grantFullControlToBucketOwner with the AWS SDK for Java v1): the bucket's ACL, read once
//!   with GetBucketAcl when the store opens, plus a FULL_CONTROL grant for the bucket owner,
//!   as the SDK's `AmazonS3Client.addAclHeaders` turns an AccessControlList into headers: one
//!   `x-amz-grant-<permission>` header per permission (full-control, read, write, read-acp,
//!   write-acp, in that order), its grantees joined by `, ` as `id="..."`, `uri="..."` or
//!   `emailAddress="..."`, in the order of the bucket's grants, the owner's grant last.

use std::sync::{Arc, OnceLock, RwLock};

use object_store::aws::{AwsAuthorizer, AwsCredentialProvider};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpService, ReqwestConnector,
};
use object_store::{ClientOptions, HeaderMap, HeaderValue};

use crate::runtime::error::{ErrorKind, FerryError, Result};

/// What the store's requests are signed with (None: unsigned requests, `skip_signature`).
#[derive(Debug)]
pub struct Signing {
    pub credentials: AwsCredentialProvider,
    pub region: String,
}

/// Shared between the store's HTTP service and [`fetch_bucket_grants`].
#[derive(Debug, Default)]
pub struct AclState {
    /// The headers for object-creating requests (empty until known).
    pub headers: RwLock<HeaderMap>,
    /// Set once the store is built.
    pub signing: OnceLock<Option<Signing>>,
    /// The plain client (no ACL headers), for GetBucketAcl.
    pub plain: OnceLock<HttpClient>,
}

/// An [`HttpConnector`] whose clients add [`AclState::headers`] to object-creating requests.
#[derive(Debug, Clone)]
pub struct AclConnector(pub Arc<AclState>);

impl HttpConnector for AclConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        let _ = self.0.plain.set(inner.clone());
        Ok(HttpClient::new(AclService {
            inner,
            state: self.0.clone(),
        }))
    }
}

#[derive(Debug)]
struct AclService {
    inner: HttpClient,
    state: Arc<AclState>,
}

/// PutObject and CopyObject (a PUT on an object key with no sub-resource: not UploadPart or
/// UploadPartCopy, which carry `partNumber`) and CreateMultipartUpload (`POST ?uploads`).
pub fn creates_object(req: &HttpRequest) -> bool {
    let query = req.uri().query().unwrap_or("");
    let params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split('=').next().unwrap_or(""))
        .collect();
    match req.method().as_str() {
        "PUT" => params.is_empty() && !req.uri().path().trim_end_matches('/').is_empty(),
        "POST" => params.contains(&"uploads"),
        _ => false,
    }
}

#[async_trait::async_trait]
impl HttpService for AclService {
    async fn call(&self, mut req: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        if creates_object(&req) {
            let headers = self.state.headers.read().unwrap().clone();
            if !headers.is_empty() {
                for (k, v) in headers.iter() {
                    req.headers_mut().insert(k.clone(), v.clone());
                }
                if let Some(Some(signing)) = self.state.signing.get() {
                    resign(&mut req, signing).await?;
                }
            }
        }
        self.inner.execute(req).await
    }
}

/// Signs `req` again (its headers changed), with the payload hash it was first signed with.
async fn resign(req: &mut HttpRequest, signing: &Signing) -> std::result::Result<(), HttpError> {
    let cred = signing
        .credentials
        .get_credential()
        .await
        .map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))?;
    let hash = req
        .headers()
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    req.headers_mut().remove("authorization");
    let mut auth = AwsAuthorizer::new(&cred, "s3", &signing.region);
    let digest = match hash.as_deref() {
        Some("UNSIGNED-PAYLOAD") => {
            auth = auth.with_sign_payload(false);
            None
        }
        Some(h) => hex::decode(h).ok(),
        None => None,
    };
    auth.try_authorize(req, digest.as_deref())
        .map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))
}

/// One grant of an AccessControlPolicy.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// `id`, `uri` or `emailAddress` (the SDK's Grantee.getTypeIdentifier()).
    pub kind: &'static str,
    pub value: String,
    pub permission: String,
}

/// The owner's canonical id and the grants of a GetBucketAcl answer (an AccessControlPolicy).
pub fn parse_policy(xml: &str) -> std::result::Result<(String, Vec<Grant>), String> {
    let owner_re = regex::Regex::new(r"(?s)<Owner>.*?<ID>(.*?)</ID>").unwrap();
    let grant_re = regex::Regex::new(r"(?s)<Grant>(.*?)</Grant>").unwrap();
    let field = |body: &str, tag: &str| {
        regex::Regex::new(&format!(r"(?s)<{tag}>(.*?)</{tag}>"))
            .unwrap()
            .captures(body)
            .map(|c| unescape(c[1].trim()))
    };
    let owner = owner_re
        .captures(xml)
        .map(|c| unescape(c[1].trim()))
        .ok_or("no <Owner><ID> in the AccessControlPolicy")?;
    let mut grants = Vec::new();
    for g in grant_re.captures_iter(xml) {
        let body = &g[1];
        let permission = field(body, "Permission").ok_or("a <Grant> without <Permission>")?;
        let (kind, value) = if let Some(id) = field(body, "ID") {
            ("id", id)
        } else if let Some(uri) = field(body, "URI") {
            ("uri", uri)
        } else if let Some(mail) = field(body, "EmailAddress") {
            ("emailAddress", mail)
        } else {
            return Err("a <Grantee> with no ID, URI or EmailAddress".into());
        };
        grants.push(Grant {
            kind,
            value,
            permission,
        });
    }
    Ok((owner, grants))
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The SDK v1's permissions in `Permission.values()` order, with their headers.
const PERMISSIONS: &[(&str, &str)] = &[
    ("FULL_CONTROL", "x-amz-grant-full-control"),
    ("READ", "x-amz-grant-read"),
    ("WRITE", "x-amz-grant-write"),
    ("READ_ACP", "x-amz-grant-read-acp"),
    ("WRITE_ACP", "x-amz-grant-write-acp"),
];

/// The bucket's grants plus FULL_CONTROL for its owner, as grant headers (see the module doc).
pub fn grant_headers(owner: &str, grants: &[Grant]) -> std::result::Result<HeaderMap, String> {
    let mut all = grants.to_vec();
    all.push(Grant {
        kind: "id",
        value: owner.to_string(),
        permission: "FULL_CONTROL".into(),
    });
    let mut out = HeaderMap::new();
    for (perm, header) in PERMISSIONS {
        let grantees: Vec<String> = all
            .iter()
            .filter(|g| g.permission == *perm)
            .map(|g| format!("{}=\"{}\"", g.kind, g.value))
            .collect();
        if grantees.is_empty() {
            continue;
        }
        let v = HeaderValue::from_str(&grantees.join(", "))
            .map_err(|e| format!("grantee not usable in a header: {e}"))?;
        out.insert(*header, v);
    }
    Ok(out)
}

/// Signs a request of ferry's own (empty body) with the store's credentials and region, as
/// object_store signs the store's requests; unsigned with `skip_signature`. Also used for the
/// multipart upload clean-up ([`crate::store::s3_uploads`]).
pub async fn sign(
    state: &AclState,
    req: &mut HttpRequest,
) -> std::result::Result<(), (ErrorKind, String)> {
    let Some(Some(signing)) = state.signing.get() else {
        return Ok(());
    };
    let cred = signing
        .credentials
        .get_credential()
        .await
        .map_err(|e| (ErrorKind::Auth, format!("no credentials: {e}")))?;
    AwsAuthorizer::new(&cred, "s3", &signing.region)
        .try_authorize(req, None)
        .map_err(|e| (ErrorKind::Internal, e.to_string()))
}

/// GetBucketAcl (`GET <bucket endpoint>?acl`), signed like the store's requests; sets
/// [`AclState::headers`] to the grant headers. A refusal says which permission is missing.
pub async fn fetch_bucket_grants(
    state: &AclState,
    bucket_endpoint: &str,
    display: &str,
) -> Result<()> {
    let fail =
        |kind: ErrorKind, msg: String| FerryError::new(kind, format!("store {display}: {msg}"));
    let client = state.plain.get().ok_or_else(|| {
        fail(
            ErrorKind::Internal,
            "no HTTP client for GetBucketAcl".into(),
        )
    })?;
    let url = format!("{}?acl", bucket_endpoint.trim_end_matches('/'));
    let mut req = http::Request::builder()
        .method("GET")
        .uri(&url)
        .body(HttpRequestBody::empty())
        .map_err(|e| {
            fail(
                ErrorKind::InvalidInput,
                format!("GetBucketAcl URL {url}: {e}"),
            )
        })?;
    sign(state, &mut req)
        .await
        .map_err(|(kind, e)| fail(kind, format!("signing GetBucketAcl: {e}")))?;
    let resp = client.execute(req).await.map_err(|e| {
        fail(
            ErrorKind::Unavailable,
            format!("GetBucketAcl (reading the bucket's ACL) failed: {e}"),
        )
    })?;
    let status = resp.status();
    let body = resp.into_body().bytes().await.map_err(|e| {
        fail(
            ErrorKind::Unavailable,
            format!("reading the GetBucketAcl answer: {e}"),
        )
    })?;
    let body = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        let code = regex::Regex::new(r"<Code>(.*?)</Code>")
            .unwrap()
            .captures(&body)
            .map(|c| c[1].to_string())
            .unwrap_or_default();
        let kind = if status.as_u16() == 403 || status.as_u16() == 401 {
            ErrorKind::Auth
        } else {
            ErrorKind::Unavailable
        };
        return Err(fail(
            kind,
            format!(
                "GetBucketAcl (reading the bucket's ACL, to grant its owner full control of each \
                 upload) was refused: {} {code}",
                status.as_u16()
            ),
        )
        .hint("allow s3:GetBucketAcl on the bucket to these credentials, or open the store without acl_from_bucket"));
    }
    let (owner, grants) = parse_policy(&body).map_err(|e| {
        fail(
            ErrorKind::InvalidInput,
            format!("the GetBucketAcl answer is not an AccessControlPolicy: {e}"),
        )
    })?;
    let headers = grant_headers(&owner, &grants).map_err(|e| fail(ErrorKind::InvalidInput, e))?;
    *state.headers.write().unwrap() = headers;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_as_the_sdk_v1_writes_them() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>abc</ID><DisplayName>o</DisplayName></Owner>
<AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>abc</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant>
<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/s3/LogDelivery</URI></Grantee><Permission>WRITE</Permission></Grant>
<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="AmazonCustomerByEmail"><EmailAddress>a&amp;b@example.com</EmailAddress></Grantee><Permission>READ</Permission></Grant>
</AccessControlList></AccessControlPolicy>"#;
        let (owner, grants) = parse_policy(xml).unwrap();
        assert_eq!(owner, "abc");
        let h = grant_headers(&owner, &grants).unwrap();
        assert_eq!(h["x-amz-grant-full-control"], r#"id="abc", id="abc""#);
        assert_eq!(
            h["x-amz-grant-write"],
            r#"uri="http://acs.amazonaws.com/groups/s3/LogDelivery""#
        );
        assert_eq!(h["x-amz-grant-read"], r#"emailAddress="a&b@example.com""#);
        assert_eq!(h.len(), 3);
    }
}
