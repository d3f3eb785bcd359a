//! TLS for SQL connections: one set of modes for MySQL-protocol servers (mysql_async) and
//! PostgreSQL (tokio-postgres with rustls), named as libpq and the MySQL client name them.
//!
//! | ferry        | libpq `sslmode` | MySQL `--ssl-mode` | what is checked                 |
//! |--------------|-----------------|--------------------|---------------------------------|
//! | disable      | disable         | DISABLED           | no TLS                          |
//! | prefer       | prefer (allow)  | PREFERRED          | TLS when the server offers it   |
//! | require      | require         | REQUIRED           | TLS, certificate not checked    |
//! | verify-ca    | verify-ca       | VERIFY_CA          | chain against the CA            |
//! | verify-full  | verify-full     | VERIFY_IDENTITY    | chain and host name             |
//!
//! `verify` is ferry's older name for verify-full. A CA file given with `require` (or with no
//! mode) means verify-ca, as libpq documents: "if a root CA file exists, the behavior of
//! sslmode=require will be the same as that of verify-ca" (PostgreSQL docs, libpq-connect,
//! sslmode).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::Backend;
use crate::runtime::error::{ErrorKind, FerryError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

const MODES: &str = "disable, prefer, require, verify-ca, verify-full (libpq: allow, \
                     prefer, ...; MySQL: DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY)";

impl TlsMode {
    /// Parses ferry's, libpq's and MySQL's spellings (case and `_`/`-` do not matter).
    pub fn parse(value: &str, what: &str) -> Result<TlsMode> {
        let v = value.trim().to_ascii_lowercase().replace('_', "-");
        Ok(match v.as_str() {
            "disable" | "disabled" => TlsMode::Disable,
            // libpq's `allow` tries plain first; ferry tries TLS first (safer, same outcome
            // against a server that accepts both).
            "allow" | "prefer" | "preferred" => TlsMode::Prefer,
            "require" | "required" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify" | "verify-full" | "verify-identity" => TlsMode::VerifyFull,
            _ => {
                return Err(FerryError::new(
                    ErrorKind::InvalidInput,
                    format!("{what} = '{value}' is not a TLS mode"),
                )
                .hint(format!("use one of {MODES}")));
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    pub fn verifies(self) -> bool {
        matches!(self, TlsMode::VerifyCa | TlsMode::VerifyFull)
    }
}

/// The TLS settings of one connection, after merging the URL and the Lua options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: TlsMode,
    /// A PEM file of CA certificates; None (or `system`) for the system's roots.
    pub ca: Option<String>,
}

impl Tls {
    pub fn ca_label(&self) -> String {
        match self.ca.as_deref() {
            None | Some("system") => "the system's root CAs".to_string(),
            Some(f) => format!("the CA file {f}"),
        }
    }
}

/// The URL without the TLS query parameters ferry reads, and what they said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTls {
    pub url: String,
    pub mode: Option<(String, String)>,
    pub ca: Option<(String, String)>,
}

fn is_mode_key(backend: Backend, k: &str) -> bool {
    match backend {
        Backend::Postgres => k == "sslmode",
        Backend::Mysql => matches!(k, "ssl-mode" | "ssl_mode" | "sslmode"),
    }
}

fn is_ca_key(backend: Backend, k: &str) -> bool {
    match backend {
        Backend::Postgres => k == "sslrootcert",
        Backend::Mysql => matches!(k, "ssl-ca" | "ssl_ca" | "sslca" | "sslrootcert"),
    }
}

/// Takes `sslmode`/`sslrootcert` (PostgreSQL) or `ssl-mode`/`sslmode`/`ssl-ca` (MySQL) out of
/// the URL's query string (the drivers would refuse `verify-full` or an unknown key).
pub fn split_url(url: &str, backend: Backend) -> UrlTls {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let Some((head, query)) = base.split_once('?') else {
        return UrlTls {
            url: url.to_string(),
            mode: None,
            ca: None,
        };
    };
    let mut kept = Vec::new();
    let (mut mode, mut ca) = (None, None);
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let key = decode(k);
        if is_mode_key(backend, &key) {
            mode = Some((key, decode(v)));
        } else if is_ca_key(backend, &key) {
            ca = Some((key, decode(v)));
        } else {
            kept.push(part);
        }
    }
    let mut out = head.to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    UrlTls { url: out, mode, ca }
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Merges the Lua options (`tls`, `ca`) with the URL's; they must agree when both are given.
/// None: nothing was asked for (each backend keeps its default: prefer for PostgreSQL as in
/// libpq, disable for MySQL as in mysql_async).
pub fn resolve(
    display: &str,
    opt_mode: Option<&str>,
    opt_ca: Option<&str>,
    from_url: &UrlTls,
) -> Result<Option<Tls>> {
    let bad = |m: String| FerryError::new(ErrorKind::InvalidInput, format!("{display}: {m}"));
    let opt = opt_mode
        .map(|m| TlsMode::parse(m, "tls").map_err(|e| prefix(display, e)))
        .transpose()?;
    let url_mode = from_url
        .mode
        .as_ref()
        .map(|(k, v)| TlsMode::parse(v, &format!("the URL's {k}")).map_err(|e| prefix(display, e)))
        .transpose()?;
    let mode = match (opt, url_mode) {
        (Some(a), Some(b)) if a != b => {
            return Err(bad(format!(
                "tls = \"{}\" but the URL says {}={}",
                opt_mode.unwrap_or_default(),
                from_url.mode.as_ref().map(|m| m.0.as_str()).unwrap_or(""),
                from_url.mode.as_ref().map(|m| m.1.as_str()).unwrap_or("")
            ))
            .hint("give the TLS mode once, in the URL or as the tls option"));
        }
        (a, b) => a.or(b),
    };
    let url_ca = from_url.ca.as_ref().map(|(_, v)| v.as_str());
    let ca = match (opt_ca, url_ca) {
        (Some(a), Some(b)) if a != b => {
            return Err(
                bad(format!("ca = \"{a}\" but the URL names the CA file {b}"))
                    .hint("give the CA file once, in the URL or as the ca option"),
            );
        }
        (a, b) => a.or(b).map(str::to_string),
    };
    if ca.as_deref() == Some("") {
        return Err(bad("the CA file name is empty".into()));
    }
    Ok(match (mode, ca) {
        (None, None) => None,
        (Some(TlsMode::Disable | TlsMode::Prefer), Some(ca)) => {
            return Err(bad(format!(
                "a CA file ({ca}) is given with tls = \"{}\", which never checks it",
                mode.map(TlsMode::name).unwrap_or_default()
            ))
            .hint("use tls = \"verify-ca\" or \"verify-full\" to check the server's certificate"));
        }
        // libpq: "if a root CA file exists, sslmode=require behaves like verify-ca".
        (None | Some(TlsMode::Require), Some(ca)) => Some(Tls {
            mode: TlsMode::VerifyCa,
            ca: Some(ca),
        }),
        (Some(mode), ca) => Some(Tls { mode, ca }),
    })
}

pub(crate) fn prefix(display: &str, mut e: FerryError) -> FerryError {
    e.message = format!("{display}: {}", e.message);
    e
}

/// The roots to check against: the CA file's certificates, or the system's.
pub fn roots(tls: &Tls) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match tls.ca.as_deref() {
        None | Some("system") => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
        Some(ca) => {
            for cert in read_ca(ca)? {
                roots.add(cert).map_err(|e| {
                    FerryError::new(ErrorKind::InvalidInput, format!("CA file {ca}: {e}"))
                })?;
            }
        }
    }
    Ok(roots)
}

/// The certificates of a PEM file; an error when it cannot be read or holds none.
pub fn read_ca(ca: &str) -> Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let pem =
        std::fs::read(ca).map_err(|e| FerryError::io(format!("reading the CA file {ca}"), &e))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(|c| c.ok())
        .collect();
    if certs.is_empty() {
        return Err(FerryError::new(
            ErrorKind::InvalidInput,
            format!("the CA file {ca} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        ));
    }
    Ok(certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// libpq's `prefer`/`require`: encrypt without checking the server's certificate (the
/// handshake signatures are still checked, so the session key belongs to that certificate).
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// libpq's `verify-ca`: the chain must lead to a trusted root; the host name is not compared.
/// rustls' WebPkiServerVerifier::verify_server_cert (rustls src/webpki/server_verifier.rs)
/// checks the chain first (verify_server_cert_signed_by_trust_anchor_impl) and the name after
/// it (verify_server_name), so a name error means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The tokio-postgres SSL mode and rustls connector for `tls` (None: libpq's default, prefer).
pub fn pg(
    tls: Option<&Tls>,
) -> Result<(
    tokio_postgres::config::SslMode,
    tokio_postgres_rustls::MakeRustlsConnect,
)> {
    use tokio_postgres::config::SslMode;
    let provider = provider();
    let mode = tls.map(|t| t.mode).unwrap_or(TlsMode::Prefer);
    let ssl_mode = match mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| FerryError::new(ErrorKind::Internal, format!("TLS setup: {e}")))?;
    let config = match tls.filter(|t| t.mode.verifies()) {
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
        Some(t) => {
            let roots = Arc::new(roots(t)?);
            if t.mode == TlsMode::VerifyFull {
                builder.with_root_certificates(roots).with_no_client_auth()
            } else {
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| FerryError::new(ErrorKind::Internal, format!("TLS setup: {e}")))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
                    .with_no_client_auth()
            }
        }
    };
    Ok((
        ssl_mode,
        tokio_postgres_rustls::MakeRustlsConnect::new(config),
    ))
}

/// mysql_async's SSL options for `tls` (None: no TLS). `name` replaces the host name that the
/// certificate is checked against (see [`presented_name`] for verify-ca).
pub fn mysql(tls: &Tls, name: Option<String>) -> Result<Option<mysql_async::SslOpts>> {
    let ssl = mysql_async::SslOpts::default();
    Ok(match tls.mode {
        TlsMode::Disable => None,
        // mysql_async/src/io/tls/rustls_io.rs DangerousVerifier: accept_invalid_certs skips
        // the certificate check but keeps the handshake signature checks.
        TlsMode::Prefer | TlsMode::Require => Some(ssl.with_danger_accept_invalid_certs(true)),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            // Our roots only (mysql_async would add webpki-roots' Mozilla list otherwise); DER
            // buffers, which mysql_async's load_root_certs takes as they are.
            let certs = match tls.ca.as_deref() {
                None | Some("system") => rustls_native_certs::load_native_certs().certs,
                Some(ca) => read_ca(ca)?,
            };
            let der = certs.into_iter().map(|c| c.to_vec().into()).collect();
            let mut ssl = ssl.with_root_certs(der).with_disable_built_in_roots(true);
            if let Some(n) = name {
                ssl = ssl.with_danger_tls_hostname_override(Some(n));
            }
            Some(ssl)
        }
    })
}

/// The rustls error inside a driver error (tokio-rustls wraps it in an io::Error).
pub fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(x) = cur {
        if let Some(r) = x.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = x.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(r);
        }
        cur = x.source();
    }
    None
}

/// For verify-ca on MySQL: mysql_async can only check the chain together with a host name (its
/// `skip_domain_validation` looks for the text "NotValidForName" in the error, which rustls
/// 0.23 no longer prints: rustls src/error.rs, Display for NotValidForNameContext). When a
/// fully verified connection fails only on the name, the chain was good (see [`ChainOnly`]);
/// the first name the certificate presents is then used as the name to check every
/// connection against. webpki formats the presented names as `DnsName("x")` or
/// `IpAddress(a.b.c.d)` (rustls-webpki src/subject_name/mod.rs, Debug for GeneralName).
pub fn presented_name(err: &rustls::Error) -> Option<Option<String>> {
    let rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
        presented,
        ..
    }) = err
    else {
        return None;
    };
    Some(presented.iter().find_map(|p| {
        let inner = p
            .strip_prefix("DnsName(\"")
            .and_then(|r| r.strip_suffix("\")"))
            .or_else(|| {
                p.strip_prefix("IpAddress(")
                    .and_then(|r| r.strip_suffix(')'))
            })?;
        ServerName::try_from(inner.to_string()).ok()?;
        Some(inner.to_string())
    }))
}

/// What to tell the user when a handshake failed on the certificate.
pub fn hint_for(err: &rustls::Error, tls: Option<&Tls>, host: &str) -> Option<String> {
    let label = tls
        .map(Tls::ca_label)
        .unwrap_or_else(|| "the system's root CAs".into());
    match err {
        rustls::Error::InvalidCertificate(c) => Some(match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "the server's certificate is not signed by {label}: give the CA that signed it \
                 (ca = \"/path/ca.pem\", ?sslrootcert= for PostgreSQL, ?ssl-ca= for MySQL), or \
                 tls = \"require\" to encrypt without checking the certificate"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the server's certificate is not issued for '{host}': connect by a name the \
                     certificate lists, or use tls = \"verify-ca\" to check the chain only"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".into()
            }
            _ => format!("the server's certificate was refused ({c:?})"),
        }),
        _ => None,
    }
}
