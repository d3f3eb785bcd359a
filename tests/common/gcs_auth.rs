//! A **GCS authorization double** in front of the real GCS emulator (fsouza/fake-gcs-server,
//! which checks no credentials): the service-account keys Astra hands out for a GCP migration
//! bucket, and the check Google's front end makes of the `Authorization: Bearer` of each JSON API
//! request.
//!
//! - [`GcsAuth::issue`] makes a service-account key JSON as `gcloud iam service-accounts keys
//!   create` writes it (`type`, `project_id`, `private_key_id`, `private_key` as PKCS#8 PEM,
//!   `client_email`, `client_id`, `auth_uri`, `token_uri`, ...), with a fresh 2048-bit RSA key
//!   (the `openssl` command) that expires after the given lifetime; `token_uri` is this double's
//!   `/token`.
//! - A request's bearer is accepted when it is either a self-signed JWT of an issued key (Google
//!   AIP-4111 "self-signed JWT": RS256, header `kid` = `private_key_id`, claims `iss` = `sub` =
//!   `client_email`, a `scope` or `aud`, signature checked with the key's public key), or an
//!   access token this double's `/token` gave for such a key (the OAuth 2.0 JWT-bearer grant of
//!   RFC 7523 that Google's client libraries use, `grant_type=urn:ietf:params:oauth:grant-type:
//!   jwt-bearer&assertion=<JWT>`). Anything else, or a key past its expiry, gets GCS's 401
//!   `Invalid Credentials` error body; accepted requests go on to the emulator as they came.
//!
//! Bodies pass through [`super::http_server::HttpServer`], which keeps 64 KiB of each: enough for
//! the small objects these tests upload (larger ones would need resumable chunks of 256 KiB).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::common::gcs::Gcs;
use crate::common::http_server::{HttpServer, Reply, Seen};

/// One issued service-account key.
#[derive(Clone, Debug)]
pub struct SaKey {
    pub private_key_id: String,
    pub client_email: String,
    /// The PKCS#8 PEM.
    pub private_key: String,
    /// The key JSON, as `keys.file` holds it once base64-decoded.
    pub json: String,
    pub expires: SystemTime,
    public_pem: PathBuf,
}

impl SaKey {
    /// `keys.file` of the MigrationStatus: the key JSON, base64.
    pub fn file(&self) -> String {
        STANDARD.encode(self.json.as_bytes())
    }
}

/// How a storage request was let in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    SelfSignedJwt,
    AccessToken,
}

#[derive(Clone, Debug)]
pub struct Authorized {
    pub method: String,
    pub path: String,
    pub key_id: String,
    pub via: Via,
    pub bearer: String,
}

#[derive(Default)]
struct State {
    keys: Vec<SaKey>,
    /// Bearer -> the key id it was verified for (a JWT is checked once).
    verified: HashMap<String, String>,
    /// Access tokens handed out by /token -> key id.
    tokens: HashMap<String, String>,
    authorized: Vec<Authorized>,
    refused: Vec<String>,
    token_requests: u32,
    delay: Duration,
}

#[derive(Clone)]
pub struct GcsAuth {
    server: Arc<HttpServer>,
    state: Arc<Mutex<State>>,
    dir: Arc<tempfile::TempDir>,
}

/// GCS's answer to a missing, bad or expired credential.
fn invalid_credentials() -> Reply {
    Reply::json(
        401,
        r#"{"error":{"code":401,"message":"Invalid Credentials","errors":[{"message":"Invalid Credentials","domain":"global","reason":"authError","locationType":"header","location":"Authorization"}]}}"#,
    )
    .header("www-authenticate", "Bearer realm=\"https://accounts.google.com/\"")
}

fn openssl(args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

impl GcsAuth {
    /// The double in front of `gcs`, or `None` (reason printed) without the `openssl` command
    /// (keys are made and signatures checked with it); under CI=true that is a failure.
    pub fn start(gcs: &Gcs) -> Option<GcsAuth> {
        if openssl(&["version"]).is_err() {
            let why = "SKIPPED: the openssl command is missing (the GCS authorization double makes RSA keys with it)";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("{why}");
            return None;
        }
        let state = Arc::new(Mutex::new(State::default()));
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let (st, up, d) = (state.clone(), gcs.clone(), dir.clone());
        let server = HttpServer::start(move |seen, _| handle(&st, &up, d.path(), seen));
        Some(GcsAuth {
            server: Arc::new(server),
            state,
            dir,
        })
    }

    /// The endpoint to give ferry (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        self.server.url.clone()
    }

    /// Issues a new key valid for `lifetime`.
    pub fn issue(&self, lifetime: Duration) -> SaKey {
        let n = self.state.lock().unwrap().keys.len();
        let pem = self.dir.path().join(format!("key{n}.pem"));
        let public_pem = self.dir.path().join(format!("key{n}.pub.pem"));
        let p = pem.to_str().unwrap();
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            p,
        ])
        .expect("openssl genpkey");
        openssl(&[
            "pkey",
            "-in",
            p,
            "-pubout",
            "-out",
            public_pem.to_str().unwrap(),
        ])
        .expect("openssl pkey -pubout");
        let private_key = std::fs::read_to_string(&pem).unwrap();
        let private_key_id = hex::encode(uuid::Uuid::new_v4().as_bytes()) + "0a1b2c3d";
        let client_email = format!(
            "sideloader-{}@astra-mig-ferry.iam.gserviceaccount.com",
            &private_key_id[..8]
        );
        let json = serde_json::json!({
            "type": "service_account",
            "project_id": "astra-mig-ferry",
            "private_key_id": private_key_id,
            "private_key": private_key,
            "client_email": client_email,
            "client_id": "104857600000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": format!("{}/token", self.server.url),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!("https://www.googleapis.com/robot/v1/metadata/x509/{client_email}"),
            "universe_domain": "googleapis.com",
        })
        .to_string();
        let key = SaKey {
            private_key_id,
            client_email,
            private_key,
            json,
            expires: SystemTime::now() + lifetime,
            public_pem,
        };
        self.state.lock().unwrap().keys.push(key.clone());
        key
    }

    /// Answers storage requests this much later (a slow link).
    pub fn set_delay(&self, d: Duration) {
        self.state.lock().unwrap().delay = d;
    }

    /// Makes every issued key expire now (a launched migration revokes them).
    pub fn revoke_all(&self) {
        let now = SystemTime::now();
        for k in self.state.lock().unwrap().keys.iter_mut() {
            k.expires = now;
        }
    }

    pub fn issued(&self) -> Vec<SaKey> {
        self.state.lock().unwrap().keys.clone()
    }

    /// When the key with this id expires (None: not issued here).
    pub fn expires(&self, key_id: &str) -> Option<SystemTime> {
        let st = self.state.lock().unwrap();
        st.keys
            .iter()
            .find(|k| k.private_key_id == key_id)
            .map(|k| k.expires)
    }

    pub fn authorized(&self) -> Vec<Authorized> {
        self.state.lock().unwrap().authorized.clone()
    }

    /// `METHOD path: why` of each refused request.
    pub fn refused(&self) -> Vec<String> {
        self.state.lock().unwrap().refused.clone()
    }

    pub fn token_requests(&self) -> u32 {
        self.state.lock().unwrap().token_requests
    }

    /// Every access token /token handed out.
    pub fn access_tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().tokens.keys().cloned().collect()
    }
}

/// The key id a JWT is validly signed by, else why not.
fn verify_jwt(st: &State, dir: &std::path::Path, jwt: &str) -> Result<String, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts[..] else {
        return Err("not a JWT".into());
    };
    let decode = |p: &str| -> Result<serde_json::Value, String> {
        let b = URL_SAFE_NO_PAD.decode(p).map_err(|e| e.to_string())?;
        serde_json::from_slice(&b).map_err(|e| e.to_string())
    };
    let (header, claims) = (decode(h)?, decode(c)?);
    if header["alg"] != "RS256" {
        return Err(format!("alg {}", header["alg"]));
    }
    let kid = header["kid"].as_str().unwrap_or("");
    let key = st
        .keys
        .iter()
        .find(|k| k.private_key_id == kid)
        .ok_or_else(|| format!("unknown kid {kid}"))?;
    if claims["iss"] != key.client_email.as_str() {
        return Err(format!(
            "iss {} is not the key's client_email",
            claims["iss"]
        ));
    }
    if claims["scope"].as_str().is_none() && claims["aud"].as_str().is_none() {
        return Err("neither scope nor aud".into());
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string())?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (msg_path, sig_path) = (dir.join(format!("{id}.msg")), dir.join(format!("{id}.sig")));
    std::fs::write(&msg_path, format!("{h}.{c}")).unwrap();
    std::fs::write(&sig_path, sig).unwrap();
    let ok = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        key.public_pem.to_str().unwrap(),
        "-signature",
        sig_path.to_str().unwrap(),
        msg_path.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&msg_path);
    let _ = std::fs::remove_file(&sig_path);
    ok.map_err(|e| format!("bad signature: {e}"))?;
    Ok(kid.to_string())
}

fn handle(state: &Mutex<State>, gcs: &Gcs, dir: &std::path::Path, seen: &Seen) -> Reply {
    let mut st = state.lock().unwrap();
    if seen.method == "POST" && seen.path == "/token" {
        // RFC 7523 JWT-bearer grant, as Google's token endpoint takes it.
        st.token_requests += 1;
        let form: HashMap<String, String> = url::form_urlencoded::parse(&seen.body)
            .into_owned()
            .collect();
        if form.get("grant_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        {
            return Reply::json(400, r#"{"error":"unsupported_grant_type"}"#);
        }
        let assertion = form.get("assertion").cloned().unwrap_or_default();
        return match verify_jwt(&st, dir, &assertion) {
            Ok(kid) => {
                let token = format!("ya29.ferry-{}", uuid::Uuid::new_v4().simple());
                st.tokens.insert(token.clone(), kid);
                Reply::json(
                    200,
                    &serde_json::json!({"access_token": token, "expires_in": 3599,
                                        "token_type": "Bearer"})
                    .to_string(),
                )
            }
            Err(why) => Reply::json(
                400,
                &serde_json::json!({"error": "invalid_grant", "error_description": why})
                    .to_string(),
            ),
        };
    }
    let bearer = seen
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    let verdict = if let Some(kid) = st.tokens.get(&bearer) {
        Ok((kid.clone(), Via::AccessToken))
    } else if let Some(kid) = st.verified.get(&bearer) {
        Ok((kid.clone(), Via::SelfSignedJwt))
    } else if bearer.is_empty() {
        Err("no bearer".to_string())
    } else {
        verify_jwt(&st, dir, &bearer).map(|kid| {
            st.verified.insert(bearer.clone(), kid.clone());
            (kid, Via::SelfSignedJwt)
        })
    };
    let (kid, via) = match verdict {
        Ok(v) => v,
        Err(why) => {
            st.refused
                .push(format!("{} {}: {why}", seen.method, seen.path));
            return invalid_credentials();
        }
    };
    let expired = st
        .keys
        .iter()
        .find(|k| k.private_key_id == kid)
        .is_none_or(|k| SystemTime::now() >= k.expires);
    if expired {
        st.refused
            .push(format!("{} {}: key {kid} expired", seen.method, seen.path));
        return invalid_credentials();
    }
    st.authorized.push(Authorized {
        method: seen.method.clone(),
        path: seen.path.clone(),
        key_id: kid,
        via,
        bearer,
    });
    let delay = st.delay;
    drop(st);
    assert!(
        seen.body_len as usize == seen.body.len(),
        "GCS auth double: a body above 64 KiB ({} bytes) cannot be passed on",
        seen.body_len
    );
    let skip = [
        "host",
        "authorization",
        "content-length",
        "connection",
        "transfer-encoding",
        "accept-encoding",
    ];
    let headers: Vec<(&str, &str)> = seen
        .headers
        .iter()
        .filter(|(k, _)| !skip.contains(&k.to_ascii_lowercase().as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = match gcs.request(&seen.method, &seen.path, &headers, &seen.body) {
        Ok(r) => r,
        Err(e) => return Reply::new(502, &format!("GCS emulator: {e}")),
    };
    let mut reply = Reply::new(r.status, "").delay(delay);
    reply.body = r.body;
    for (k, v) in r.headers {
        if !matches!(
            k.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            reply = reply.header(&k, &v.replace(&gcs.endpoint, &self_url(seen)));
        }
    }
    reply
}

/// This double's own URL as the client addressed it (for Location headers).
fn self_url(seen: &Seen) -> String {
    format!("http://{}", seen.header("host").unwrap_or("127.0.0.1"))
}
