//! An in-process S3 server for integration tests: `s3s-fs` (objects are plain files under a temp
//! dir) behind real SigV4 authentication, listening on a random port of 127.0.0.1.
//!
//! The server runs on its own thread with its own tokio runtime, so it keeps serving while a plain
//! `#[test]` waits for a `ferry` subprocess (or while a `#[tokio::test]` runtime blocks). It stops
//! when the [`S3Server`] is dropped.
//!
//! ```ignore
//! let s3 = S3Server::start();
//! s3.create_bucket("src");
//! s3.put_file("src", "a/1.txt", b"one");
//! let mut ferry = Ferry::new();
//! s3.apply_env(&mut ferry.cmd); // removes UNSET_ENV (AWS_CA_BUNDLE, ...) and sets env()
//! ferry.args(["run", "tree-copy", "s3://src/a", "..."]).run().code(0);
//! assert_eq!(s3.read_file("dst", "a/1.txt").unwrap(), b"one");
//! ```
//!
//! Notes on s3s-fs behaviour:
//! - buckets are directories under [`S3Server::root`]; names shorter than 3 characters are rejected;
//! - object metadata lives in `.bucket-*.json` files at the root (not inside the bucket folder);
//! - HEAD on a "directory" key (a prefix) answers 500, not 404;
//! - requests to `127.0.0.1:PORT` (or `localhost:PORT`) are path-style; requests whose `Host` is
//!   a name below `localhost` are virtual-hosted, the first label being the bucket
//!   (`sea-blocks.localhost:PORT`, `sea-blocks.oss-cn-hangzhou.localhost:PORT`), see
//!   [`LocalhostHost`]. Clients resolve `*.localhost` to loopback themselves (RFC 6761 6.3;
//!   ferry does for S3 endpoints below `localhost`).

use super::background::Background;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use s3s::auth::{S3Auth, SecretKey, SimpleAuth};
use s3s::host::{S3Host, VirtualHost};
use s3s::service::{S3Service, S3ServiceBuilder};

/// Environment variables a test must remove from a child process that talks to [`S3Server`]:
/// the machine exports `AWS_CA_BUNDLE` (a CA file that would be loaded for a plain-HTTP endpoint)
/// and may carry profiles, tokens or settings that change how the AWS client signs or addresses
/// requests, and proxies that would capture loopback traffic. [`S3Server::apply_env`] removes them.
pub const UNSET_ENV: &[&str] = &[
    "AWS_CA_BUNDLE",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_METADATA_ENDPOINT",
    "AWS_IMDSV1_FALLBACK",
    "AWS_BUCKET",
    "AWS_BUCKET_NAME",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
    "AWS_S3_EXPRESS",
    "AWS_UNSIGNED_PAYLOAD",
    "AWS_SKIP_SIGNATURE",
    "AWS_CHECKSUM_ALGORITHM",
    "AWS_COPY_IF_NOT_EXISTS",
    "AWS_CONDITIONAL_PUT",
    "AWS_REQUEST_PAYER",
    "AWS_SERVER_SIDE_ENCRYPTION",
    "AWS_SSE_KMS_KEY_ID",
    "AWS_SSE_BUCKET_KEY_ENABLED",
    "AWS_SSE_CUSTOMER_KEY_BASE64",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// The region the server is addressed with (s3s accepts any region in the signature scope).
pub const REGION: &str = "us-east-1";

pub struct S3Server {
    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` for [`S3Server::start_tls`] (no
    /// trailing slash).
    pub endpoint: String,
    pub addr: SocketAddr,
    pub access_key: String,
    pub secret_key: String,
    /// When set, every request must also carry `x-amz-security-token` (or the presigned
    /// `X-Amz-Security-Token` query parameter) equal to this, else it is refused with 403.
    pub session_token: Option<String>,
    /// The s3s-fs root: one folder per bucket, objects are files below it.
    pub root: PathBuf,
    /// Temporary credentials this server accepts besides its own keys (see [`Sts`]).
    pub sts: Sts,
    requests: Arc<AtomicU64>,
    delay_ms: Arc<AtomicU64>,
    hold: Arc<Hold>,
    log: Arc<Mutex<Vec<String>>>,
    bucket_region: Arc<Mutex<Option<String>>>,
    signed: Arc<Mutex<Vec<SignedRequest>>>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    bucket_acl: Arc<Mutex<BucketAcl>>,
    background: Option<Background>,
    tls: Option<TestTls>,
    handshake_failures: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
}

/// One set of temporary credentials, as AWS STS hands out: keys plus a session token that is
/// valid until `expires`.
#[derive(Debug, Clone)]
pub struct TempCred {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: String,
    pub expires: SystemTime,
}

/// The temporary credentials an [`S3Server`] accepts, issued by a test double of the service that
/// hands them out (the Astra DevOps API double). A request signed with an issued access key must
/// carry that key's session token (else 403 `InvalidToken`), is refused with 400 `ExpiredToken`
/// after `expires` (AWS's answer), and with 403 `AccessDenied` once the credentials are revoked.
#[derive(Clone, Default)]
pub struct Sts {
    inner: Arc<Mutex<StsState>>,
}

#[derive(Default)]
struct StsState {
    issued: Vec<TempCred>,
    revoked: bool,
    expired_refusals: u64,
}

impl Sts {
    /// Issues new credentials valid for `lifetime`.
    pub fn issue(&self, lifetime: Duration) -> TempCred {
        let simple = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
        let cred = TempCred {
            access_key: format!("ASIAFERRY{}", &simple[..11]),
            secret_key: uuid::Uuid::new_v4().simple().to_string(),
            session_token: format!("FwoGZXIvYXdzE{}", uuid::Uuid::new_v4().simple()),
            expires: SystemTime::now() + lifetime,
        };
        self.inner.lock().unwrap().issued.push(cred.clone());
        cred
    }

    /// Every credential issued so far, oldest first.
    pub fn issued(&self) -> Vec<TempCred> {
        self.inner.lock().unwrap().issued.clone()
    }

    /// When the credentials with this access key expire (None: not issued here).
    pub fn expires(&self, access_key: &str) -> Option<SystemTime> {
        let st = self.inner.lock().unwrap();
        st.issued
            .iter()
            .find(|c| c.access_key == access_key)
            .map(|c| c.expires)
    }

    /// Makes every issued credential expire now (credentials rotated or cut short early).
    pub fn expire_all(&self) {
        let now = SystemTime::now();
        for c in self.inner.lock().unwrap().issued.iter_mut() {
            c.expires = now;
        }
    }

    /// Makes the credentials with this access key expire now (the others stay valid).
    pub fn expire(&self, access_key: &str) {
        let now = SystemTime::now();
        for c in self.inner.lock().unwrap().issued.iter_mut() {
            if c.access_key == access_key {
                c.expires = now;
            }
        }
    }

    /// Refuses every issued credential from now on (as a launched migration does).
    pub fn revoke_all(&self) {
        self.inner.lock().unwrap().revoked = true;
    }

    /// How many requests were refused because their credentials had expired.
    pub fn expired_refusals(&self) -> u64 {
        self.inner.lock().unwrap().expired_refusals
    }

    fn secret(&self, access_key: &str) -> Option<String> {
        let st = self.inner.lock().unwrap();
        st.issued
            .iter()
            .find(|c| c.access_key == access_key)
            .map(|c| c.secret_key.clone())
    }

    /// `None` when the request may go on, else the refusal (status, code, message).
    fn check(
        &self,
        access_key: &str,
        token: Option<&str>,
    ) -> Option<(StatusCode, &'static str, &'static str)> {
        let mut st = self.inner.lock().unwrap();
        let cred = st
            .issued
            .iter()
            .find(|c| c.access_key == access_key)?
            .clone();
        if token != Some(cred.session_token.as_str()) {
            return Some((
                StatusCode::FORBIDDEN,
                "InvalidToken",
                "The provided token is malformed or otherwise invalid.",
            ));
        }
        if st.revoked {
            return Some((StatusCode::FORBIDDEN, "AccessDenied", "Access Denied"));
        }
        if SystemTime::now() >= cred.expires {
            st.expired_refusals += 1;
            return Some((
                StatusCode::BAD_REQUEST,
                "ExpiredToken",
                "The provided token has expired.",
            ));
        }
        None
    }
}

/// The server's own keys plus whatever [`Sts`] issued.
struct ServerAuth {
    main: SimpleAuth,
    sts: Sts,
}

#[async_trait::async_trait]
impl S3Auth for ServerAuth {
    async fn get_secret_key(&self, access_key: &str) -> s3s::S3Result<SecretKey> {
        match self.sts.secret(access_key) {
            Some(secret) => Ok(SecretKey::from(secret)),
            None => self.main.get_secret_key(access_key).await,
        }
    }
}

impl S3Server {
    /// Starts a server with freshly generated keys and an empty temp root.
    pub fn start() -> S3Server {
        Self::start_inner(None, None)
    }

    /// Starts a server that speaks HTTPS only (rustls, HTTP/1.1), with a certificate for
    /// `localhost`, `*.localhost`, `<bucket>.localhost` for each of `buckets` and `127.0.0.1`,
    /// issued by a CA made for this server ([`S3Server::ca_pem`]). A second, unrelated CA
    /// ([`S3Server::other_ca_pem`]) is made as well, for wrong-CA tests. [`S3Server::endpoint`]
    /// is `https://localhost:PORT`. Needs the `openssl` command.
    pub fn start_tls(buckets: &[&str]) -> S3Server {
        let dir = tempfile::tempdir().expect("tls temp dir");
        let tls = TestTls::make(dir, buckets);
        Self::start_inner(None, Some(tls))
    }

    /// The PEM file of the CA that issued this server's certificate (None: plain HTTP).
    pub fn ca_pem(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|t| t.dir.path().join("ca.pem"))
    }

    /// The PEM file of a CA that did not issue this server's certificate (None: plain HTTP).
    pub fn other_ca_pem(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|t| t.dir.path().join("other-ca.pem"))
    }

    /// How many connections failed their TLS handshake (a client that refused the certificate,
    /// or spoke plain HTTP to this HTTPS port).
    pub fn tls_handshake_failures(&self) -> u64 {
        self.handshake_failures.load(Ordering::SeqCst)
    }

    /// Starts a server that, besides a valid SigV4 signature, requires the session token `token`
    /// in `x-amz-security-token` (as temporary AWS credentials do); requests without it or with
    /// another value get 403 `InvalidToken`. [`S3Server::env`] then also sets `AWS_SESSION_TOKEN`.
    pub fn with_session_token(token: &str) -> S3Server {
        Self::start_inner(Some(token.to_string()), None)
    }

    fn start_inner(session_token: Option<String>, tls: Option<TestTls>) -> S3Server {
        let dir = tempfile::tempdir().expect("s3 temp dir");
        let root = dir.path().to_path_buf();
        let simple = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
        let access_key = format!("AKIAFERRY{}", &simple[..11]);
        let secret_key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );

        let fs = s3s_fs::FileSystem::new(&root).expect("s3s-fs root");
        let sts = Sts::default();
        let service = {
            let mut b = S3ServiceBuilder::new(fs);
            b.set_auth(ServerAuth {
                main: SimpleAuth::from_single(access_key.clone(), secret_key.clone()),
                sts: sts.clone(),
            });
            b.set_host(LocalhostHost);
            b.build()
        };

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");

        let requests = Arc::new(AtomicU64::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let hold = Arc::new(Hold::default());
        let log = Arc::new(Mutex::new(Vec::new()));
        let bucket_region = Arc::new(Mutex::new(None));
        let signed = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let bucket_acl = Arc::new(Mutex::new(BucketAcl::default()));
        let state = Arc::new(State {
            bucket_acl: bucket_acl.clone(),
            root: root.clone(),
            bucket_region: bucket_region.clone(),
            signed: signed.clone(),
            service,
            session_token: session_token.clone(),
            sts: sts.clone(),
            requests: requests.clone(),
            delay_ms: delay_ms.clone(),
            hold: hold.clone(),
            log: log.clone(),
            seen: seen.clone(),
        });
        let handshake_failures = Arc::new(AtomicU64::new(0));
        let background = match &tls {
            None => Background::spawn("s3-server", listener, move |listener| {
                accept_loop(listener, state)
            }),
            Some(t) => {
                let acceptor = t.acceptor();
                let failures = handshake_failures.clone();
                Background::spawn("s3-tls-server", listener, move |listener| {
                    accept_loop_tls(listener, state, acceptor, failures)
                })
            }
        };
        let endpoint = match &tls {
            None => format!("http://{addr}"),
            Some(_) => format!("https://localhost:{}", addr.port()),
        };

        S3Server {
            endpoint,
            tls,
            handshake_failures,
            addr,
            access_key,
            secret_key,
            session_token,
            root,
            sts,
            requests,
            delay_ms,
            hold,
            log,
            bucket_region,
            signed,
            seen,
            bucket_acl,
            background: Some(background),
            _dir: dir,
        }
    }

    /// Creates a bucket (a folder under the root). Panics on names s3s-fs would reject.
    pub fn create_bucket(&self, name: &str) {
        assert!(
            name.len() >= 3
                && name.len() <= 63
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'),
            "bad bucket name {name:?} (3-63 chars of a-z, 0-9, '-', '.')"
        );
        std::fs::create_dir_all(self.root.join(name)).expect("create bucket dir");
    }

    /// Environment for a child process (object_store / AWS conventions): keys, region, endpoint,
    /// plain HTTP allowed, and `AWS_SESSION_TOKEN` when the server requires one.
    /// Remove [`UNSET_ENV`] from the child as well (or use [`S3Server::apply_env`]).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("AWS_ACCESS_KEY_ID".to_string(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), self.secret_key.clone()),
            ("AWS_REGION".to_string(), REGION.to_string()),
            ("AWS_ENDPOINT_URL".to_string(), self.endpoint.clone()),
            ("AWS_ALLOW_HTTP".to_string(), "true".to_string()),
        ];
        if let Some(t) = &self.session_token {
            env.push(("AWS_SESSION_TOKEN".to_string(), t.clone()));
        }
        env
    }

    /// Like [`S3Server::env`] but pointing `AWS_ENDPOINT_URL` at another endpoint (for example a
    /// fault proxy in front of this server).
    pub fn env_via(&self, endpoint: &str) -> Vec<(String, String)> {
        let mut env = self.env();
        for (k, v) in env.iter_mut() {
            if k == "AWS_ENDPOINT_URL" {
                *v = endpoint.to_string();
            }
        }
        env
    }

    /// Removes [`UNSET_ENV`] from `cmd` and sets [`S3Server::env`].
    pub fn apply_env(&self, cmd: &mut Command) {
        apply(cmd, self.env());
    }

    /// Removes [`UNSET_ENV`] from `cmd` and sets [`S3Server::env_via`]`(endpoint)`.
    pub fn apply_env_via(&self, cmd: &mut Command, endpoint: &str) {
        apply(cmd, self.env_via(endpoint));
    }

    /// An object_store client for `bucket` on this server (or on `endpoint` when given, e.g. a
    /// fault proxy), path-style, plain HTTP, with the server's keys.
    pub fn store(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        self.store_via(bucket, &self.endpoint)
    }

    pub fn store_via(&self, bucket: &str, endpoint: &str) -> object_store::aws::AmazonS3 {
        let mut b = self
            .store_builder(bucket)
            .with_endpoint(endpoint.to_string());
        if let Some(t) = &self.session_token {
            b = b.with_token(t.clone());
        }
        b.build().expect("AmazonS3 client")
    }

    /// The builder behind [`S3Server::store`], to adjust (retries, wrong keys, ...).
    pub fn store_builder(&self, bucket: &str) -> object_store::aws::AmazonS3Builder {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(self.endpoint.clone())
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_region(REGION)
            .with_bucket_name(bucket)
            .with_access_key_id(self.access_key.clone())
            .with_secret_access_key(self.secret_key.clone())
    }

    /// The file holding object `key` of `bucket`.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// Writes an object directly on disk (s3s-fs serves it; its ETag is computed on read).
    pub fn put_file(&self, bucket: &str, key: &str, data: &[u8]) {
        let p = self.object_path(bucket, key);
        std::fs::create_dir_all(p.parent().expect("object parent")).expect("mkdir object parent");
        std::fs::write(&p, data).expect("write object file");
    }

    /// Reads an object directly from disk (None when absent).
    pub fn read_file(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.object_path(bucket, key)).ok()
    }

    /// Keys of the files of `bucket` (sorted, '/'-separated), read from disk.
    pub fn list_files(&self, bucket: &str) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else if let Ok(rel) = p.strip_prefix(base) {
                    let key: Vec<String> = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    out.push(key.join("/"));
                }
            }
        }
        let base = self.root.join(bucket);
        let mut out = Vec::new();
        walk(&base, &base, &mut out);
        out.sort();
        out
    }

    /// How many HTTP requests the server has received (refused ones included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Makes every later request wait this long before it is served (a slow link).
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Makes later requests whose `METHOD /path?query` contains `pattern` wait after their
    /// credentials are checked (and accepted) until [`S3Server::release`]: a request that is under
    /// way, at a point the test chooses. [`S3Server::held`] says how many wait.
    pub fn hold(&self, pattern: &str) {
        *self.hold.pattern.lock().unwrap() = Some(pattern.to_string());
    }

    /// Lets held requests (and later ones) go on.
    pub fn release(&self) {
        *self.hold.pattern.lock().unwrap() = None;
    }

    /// How many requests wait in a [`S3Server::hold`] now.
    pub fn held(&self) -> u64 {
        self.hold.waiting.load(Ordering::SeqCst)
    }

    /// Opt-in: the buckets live in `region`, as on AWS. A request signed for another region (the
    /// credential scope `AK/date/REGION/s3/aws4_request`) is refused with 400
    /// `AuthorizationHeaderMalformed` ("the region 'X' is wrong; expecting 'Y'", `<Region>Y`),
    /// and HeadBucket (`HEAD /bucket`) answers the `x-amz-bucket-region` header, unsigned (403,
    /// as AWS answers an anonymous HeadBucket) or signed for any region (AWS S3 API reference,
    /// HeadBucket: "x-amz-bucket-region" is returned even when access is denied).
    pub fn require_region(&self, region: &str) {
        *self.bucket_region.lock().unwrap() = Some(region.to_string());
    }

    /// The `Host` header and the SigV4 credential-scope region of every signed request so far.
    pub fn signed_requests(&self) -> Vec<SignedRequest> {
        self.signed.lock().unwrap().clone()
    }

    /// `METHOD /path?query STATUS` of every request served so far, in order.
    pub fn request_log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Every request served so far with its headers, in order.
    pub fn requests_seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }

    /// Adds grants to what GetBucketAcl answers (see [`BucketAcl`]), after the owner's
    /// FULL_CONTROL: `(kind, value, permission)` with kind `id` (CanonicalUser), `uri` (Group)
    /// or `emailAddress` (AmazonCustomerByEmail).
    pub fn add_bucket_grants(&self, grants: &[(&str, &str, &str)]) {
        let mut acl = self.bucket_acl.lock().unwrap();
        for (k, v, p) in grants {
            acl.grants
                .push((k.to_string(), v.to_string(), p.to_string()));
        }
    }

    /// Makes GetBucketAcl answer 403 AccessDenied (credentials without s3:GetBucketAcl).
    pub fn refuse_get_bucket_acl(&self) {
        self.bucket_acl.lock().unwrap().refuse = true;
    }
}

/// BUCKET_OWNER_ID: the canonical user id of the buckets' owner in the GetBucketAcl double (the
/// example id of the S3 API reference).
pub const BUCKET_OWNER_ID: &str =
    "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a";

/// TEST DOUBLE BEHAVIOUR: s3s-fs 0.14.1 does not implement GetBucketAcl (s3s answers 501
/// NotImplemented), so this server answers a correctly signed `GET /<bucket>?acl` itself, the way
/// AWS does (S3 API reference, GetBucketAcl:
/// https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketAcl.html): 200 and an
/// `AccessControlPolicy` document with the bucket's `Owner` and its `AccessControlList`, whose
/// grants start with the owner's FULL_CONTROL (the ACL every new bucket has), then
/// [`S3Server::add_bucket_grants`]'s; or 403 AccessDenied after [`S3Server::refuse_get_bucket_acl`].
#[derive(Default)]
struct BucketAcl {
    grants: Vec<(String, String, String)>,
    refuse: bool,
}

impl BucketAcl {
    fn policy_xml(&self) -> String {
        let xsi = r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#;
        let mut grants = format!(
            "<Grant><Grantee {xsi} xsi:type=\"CanonicalUser\"><ID>{BUCKET_OWNER_ID}</ID><DisplayName>ferry-test</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant>"
        );
        for (kind, value, perm) in &self.grants {
            let grantee = match kind.as_str() {
                "id" => {
                    format!("<Grantee {xsi} xsi:type=\"CanonicalUser\"><ID>{value}</ID></Grantee>")
                }
                "uri" => format!("<Grantee {xsi} xsi:type=\"Group\"><URI>{value}</URI></Grantee>"),
                "emailAddress" => format!(
                    "<Grantee {xsi} xsi:type=\"AmazonCustomerByEmail\"><EmailAddress>{value}</EmailAddress></Grantee>"
                ),
                other => panic!("unknown grantee kind {other}"),
            };
            grants.push_str(&format!(
                "<Grant>{grantee}<Permission>{perm}</Permission></Grant>"
            ));
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>{BUCKET_OWNER_ID}</ID><DisplayName>ferry-test</DisplayName></Owner><AccessControlList>{grants}</AccessControlList></AccessControlPolicy>"
        )
    }
}

/// `GET /<bucket>?acl` (path-style) or `GET /?acl` on a bucket host.
fn is_get_bucket_acl(method: &hyper::Method, uri: &hyper::Uri) -> bool {
    method == hyper::Method::GET
        && uri.path().trim_matches('/').split('/').count() <= 1
        && uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == "acl" || kv == "acl="))
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(b) = self.background.take() {
            b.stop();
        }
    }
}

fn apply(cmd: &mut Command, env: Vec<(String, String)>) {
    for k in UNSET_ENV {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
}

/// What [`S3Server::signed_requests`] records of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The `Host` header, e.g. `sea-blocks.localhost:41234` or `127.0.0.1:41234`.
    pub host: String,
    /// The region of the `Credential=AK/DATE/REGION/s3/aws4_request` scope.
    pub region: String,
}

/// Virtual-host parsing for this server: an IP address or `localhost` (with or without port) is
/// path-style; a name below `localhost` is virtual-hosted with its first label as the bucket.
/// (s3s's `SingleDomain` would take `127.0.0.1:PORT` itself for a bucket name, its CNAME rule.)
pub struct LocalhostHost;

impl S3Host for LocalhostHost {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> s3s::S3Result<VirtualHost<'a>> {
        if host.starts_with('[') {
            return Ok(VirtualHost::new(host)); // an IPv6 literal
        }
        let name = match host.rsplit_once(':') {
            Some((h, port)) if port.parse::<u16>().is_ok() => h,
            _ => host,
        };
        if name.parse::<std::net::IpAddr>().is_ok() || name.eq_ignore_ascii_case("localhost") {
            return Ok(VirtualHost::new(host));
        }
        if name.to_ascii_lowercase().ends_with(".localhost")
            && let Some((bucket, _)) = name.split_once('.')
            && !bucket.is_empty()
        {
            return Ok(VirtualHost::new(host).with_bucket(bucket));
        }
        Err(s3s::s3_error!(InvalidRequest, "Invalid host header"))
    }
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub status: u16,
    /// Every header, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The header names the SigV4 signature covers (`SignedHeaders=` of `Authorization`).
    pub fn signed_headers(&self) -> Vec<String> {
        self.header("authorization")
            .and_then(|a| a.split("SignedHeaders=").nth(1))
            .map(|v| {
                v.split(',')
                    .next()
                    .unwrap_or("")
                    .split(';')
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Requests whose `METHOD /path?query` contains `pattern` wait, once their credentials are
/// accepted, until released (see [`S3Server::hold`]).
#[derive(Default)]
struct Hold {
    pattern: Mutex<Option<String>>,
    waiting: AtomicU64,
}

struct State {
    bucket_acl: Arc<Mutex<BucketAcl>>,
    /// The s3s-fs root (for its multipart upload records, see [`same_principal`]).
    root: PathBuf,
    hold: Arc<Hold>,
    signed: Arc<Mutex<Vec<SignedRequest>>>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    service: S3Service,
    session_token: Option<String>,
    sts: Sts,
    requests: Arc<AtomicU64>,
    delay_ms: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<String>>>,
    bucket_region: Arc<Mutex<Option<String>>>,
}

async fn accept_loop(listener: tokio::net::TcpListener, state: Arc<State>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), svc)
                .await;
        });
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<s3s::Body>, s3s::HttpError> {
    let what = format!("{} {}", req.method(), req.uri());
    if let Some(region) = signing_region(&req) {
        let host = req
            .headers()
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        state
            .signed
            .lock()
            .unwrap()
            .push(SignedRequest { host, region });
    }
    let (method, uri) = (req.method().to_string(), req.uri().to_string());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let resp = serve(&state, req).await;
    if let Ok(r) = &resp {
        state
            .log
            .lock()
            .unwrap()
            .push(format!("{what} {}", r.status().as_u16()));
        state.seen.lock().unwrap().push(SeenRequest {
            method,
            uri,
            status: r.status().as_u16(),
            headers,
        });
    }
    resp
}

async fn serve(
    state: &State,
    req: Request<Incoming>,
) -> Result<Response<s3s::Body>, s3s::HttpError> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let header = req
        .headers()
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let query = req.uri().query().and_then(|q| {
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            k.eq_ignore_ascii_case("X-Amz-Security-Token")
                .then(|| percent_decode(v))
        })
    });
    let given = header.or(query);
    let region = state.bucket_region.lock().unwrap().clone();
    if let Some(region) = region
        && let Some(refusal) = region_check(&req, &region)
    {
        return Ok(refusal);
    }
    if let Some(ak) = signing_key(&req) {
        if let Some((status, code, msg)) = state.sts.check(&ak, given.as_deref()) {
            return Ok(error_response(status, code, msg));
        }
        same_principal(state, &req, &ak);
    }
    if let Some(expected) = &state.session_token
        && given.as_deref() != Some(expected.as_str())
    {
        let (code, msg) = match given {
            None => ("InvalidToken", "A security token is required."),
            Some(_) => (
                "InvalidToken",
                "The provided token is malformed or otherwise invalid.",
            ),
        };
        return Ok(error_response(StatusCode::FORBIDDEN, code, msg));
    }
    let what = format!("{} {}", req.method(), req.uri());
    let held = |h: &Hold| {
        h.pattern
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|p| what.contains(p))
    };
    if held(&state.hold) {
        state.hold.waiting.fetch_add(1, Ordering::SeqCst);
        while held(&state.hold) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        state.hold.waiting.fetch_sub(1, Ordering::SeqCst);
    }
    let head_bucket = req.method() == hyper::Method::HEAD
        && req.uri().path().trim_matches('/').split('/').count() == 1;
    let bucket_acl = is_get_bucket_acl(req.method(), req.uri());
    let mut resp = state.service.call(req.map(s3s::Body::from)).await?;
    // s3s checked the signature and answered 501 (s3s-fs has no GetBucketAcl): see BucketAcl.
    if bucket_acl && resp.status() == StatusCode::NOT_IMPLEMENTED {
        let acl = state.bucket_acl.lock().unwrap();
        if acl.refuse {
            return Ok(error_response(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Access Denied",
            ));
        }
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/xml")
            .body(s3s::Body::from(acl.policy_xml()))
            .expect("acl response"));
    }
    if head_bucket
        && let Some(region) = state.bucket_region.lock().unwrap().as_deref()
        && let Ok(v) = region.parse()
    {
        resp.headers_mut().insert("x-amz-bucket-region", v);
    }
    Ok(resp)
}

/// Every set of [`Sts`] credentials stands for one principal (the sessions of one role, as AWS
/// hands out), and AWS authorizes the parts and completion of a multipart upload by that
/// principal's permissions, not by the session that started it. s3s-fs instead records the
/// initiating access key (`<root>/.upload-<id>.json`, s3s-fs `fs.rs` `create_upload_id` /
/// `verify_upload_id`) and refuses other keys with AccessDenied; so when a request carries other
/// credentials of the same Sts than the upload's initiator, the record takes the new key.
fn same_principal(state: &State, req: &Request<Incoming>, ak: &str) {
    let Some(id) = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("uploadId="))
            .map(str::to_string)
    }) else {
        return;
    };
    if state.sts.expires(ak).is_none() || uuid::Uuid::parse_str(&id).is_err() {
        return;
    }
    let record = state.root.join(format!(".upload-{id}.json"));
    let Ok(bytes) = std::fs::read(&record) else {
        return;
    };
    if let Ok(Some(owner)) = serde_json::from_slice::<Option<String>>(&bytes)
        && owner != ak
        && state.sts.expires(&owner).is_some()
    {
        std::fs::write(&record, serde_json::to_vec(ak).unwrap()).unwrap();
    }
}

/// The access key a request is signed with (`Authorization: AWS4-HMAC-SHA256 Credential=AK/...`
/// or a presigned URL's `X-Amz-Credential`).
fn signing_key(req: &Request<Incoming>) -> Option<String> {
    let from_header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|v| v.split('/').next())
        .map(str::to_string);
    from_header.or_else(|| {
        req.uri().query().and_then(|q| {
            q.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                k.eq_ignore_ascii_case("X-Amz-Credential").then(|| {
                    percent_decode(v)
                        .split('/')
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
            })
        })
    })
}

/// The region of a request's SigV4 credential scope (header or presigned query).
fn signing_region(req: &Request<Incoming>) -> Option<String> {
    let scope = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .map(|v| v.split(',').next().unwrap_or("").to_string())
        .or_else(|| {
            req.uri().query().and_then(|q| {
                q.split('&').find_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    k.eq_ignore_ascii_case("X-Amz-Credential")
                        .then(|| percent_decode(v))
                })
            })
        })?;
    scope.split('/').nth(2).map(str::to_string)
}

/// See [`S3Server::require_region`]: `Some(refusal)` when the request must not go on.
fn region_check(req: &Request<Incoming>, region: &str) -> Option<Response<s3s::Body>> {
    let head_bucket = req.method() == hyper::Method::HEAD
        && req.uri().path().trim_matches('/').split('/').count() == 1;
    let with_region = |mut r: Response<s3s::Body>| {
        if let Ok(v) = region.parse() {
            r.headers_mut().insert("x-amz-bucket-region", v);
        }
        r
    };
    match signing_region(req) {
        None if head_bucket => Some(with_region(error_response(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Access Denied",
        ))),
        Some(given) if given != region => {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region '{given}' is wrong; expecting '{region}'</Message><Region>{region}</Region><RequestId>ferry-test</RequestId></Error>"
            );
            Some(with_region(
                Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .header("content-type", "application/xml")
                    .body(s3s::Body::from(body))
                    .expect("error response"),
            ))
        }
        _ => None,
    }
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response<s3s::Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>ferry-test</RequestId></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(s3s::Body::from(body))
        .expect("error response")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The certificates of an HTTPS [`S3Server`], made with the `openssl` command in a temp dir:
/// `ca.pem` (the issuing CA), `other-ca.pem` (an unrelated CA), `cert.pem` + `key.pem` (the
/// server's, P-256, SANs `localhost`, `*.localhost`, `<bucket>.localhost`, `127.0.0.1`).
pub struct TestTls {
    dir: tempfile::TempDir,
}

impl TestTls {
    /// A CA, an unrelated CA and a server certificate for `localhost`/`127.0.0.1`, for other
    /// TLS servers of the tests (the StarRocks double's FE query port).
    #[allow(dead_code)]
    pub fn for_localhost() -> TestTls {
        TestTls::make(tempfile::tempdir().expect("tls temp dir"), &[])
    }

    /// A file of this set: `ca.pem`, `other-ca.pem`, `cert.pem`, `key.pem`.
    #[allow(dead_code)]
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn make(dir: tempfile::TempDir, buckets: &[&str]) -> TestTls {
        let d = dir.path();
        let mut san = vec![
            "DNS:localhost".to_string(),
            "DNS:*.localhost".to_string(),
            "IP:127.0.0.1".to_string(),
        ];
        // rustls-webpki accepts a wildcard only with at least two labels after it
        // (src/subject_name/dns_name.rs, `is_valid_dns_id`: "Like NSS, require at least two
        // labels to follow the wildcard label"), so `*.localhost` alone does not cover
        // `bucket.localhost` for ferry's client: each bucket host is named as well.
        san.extend(buckets.iter().map(|b| format!("DNS:{b}.localhost")));
        std::fs::write(
            d.join("ext.cnf"),
            format!(
                "subjectAltName={}\nbasicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
                san.join(",")
            ),
        )
        .expect("write ext.cnf");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("run openssl (apt-get install openssl)");
            assert!(
                out.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        for (name, cn) in [("ca", "ferry S3 test CA"), ("other-ca", "ferry other CA")] {
            let (key, pem, subj) = (
                format!("{name}-key.pem"),
                format!("{name}.pem"),
                format!("/CN={cn}"),
            );
            let mut a = vec!["req", "-x509"];
            a.extend(ec);
            a.extend(["-days", "2", "-subj", &subj, "-keyout", &key, "-out", &pem]);
            run(&a);
        }
        let mut a = vec!["req"];
        a.extend(ec);
        a.extend([
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ]);
        run(&a);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ]);
        TestTls { dir }
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let d = self.dir.path();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(d.join("cert.pem"))
            .expect("read cert.pem")
            .collect::<Result<_, _>>()
            .expect("parse cert.pem");
        let key = PrivateKeyDer::from_pem_file(d.join("key.pem")).expect("parse key.pem");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server certificate");
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
    }
}

async fn accept_loop_tls(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    acceptor: tokio_rustls::TlsAcceptor,
    failures: Arc<AtomicU64>,
) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (state, acceptor, failures) = (state.clone(), acceptor.clone(), failures.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(socket).await else {
                failures.fetch_add(1, Ordering::SeqCst);
                return;
            };
            let svc = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
