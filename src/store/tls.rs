//! Extra trusted root certificates for HTTPS stores: a PEM bundle named by a store option
//! (`ca_file`) or, for S3, by `AWS_CA_BUNDLE`, as the AWS CLI and SDKs read it (botocore
//! `configprovider.py`: `ca_bundle` config / `AWS_CA_BUNDLE`; an empty value counts as unset).
//! The certificates are added to the system roots (object_store `ClientOptions::
//! with_root_certificate`, which reqwest hands to rustls-platform-verifier as extra roots); they
//! never turn verification off, and an `https://` endpoint stays HTTPS whatever `allow_http` says.
//!
//! Usable by every backend: [`ca_source`] picks the file, [`add_roots`] loads it.

use std::path::PathBuf;

use object_store::{Certificate, ClientOptions};

use crate::runtime::error::{ErrorKind, FerryError, Result};

/// Where the CA file came from (named in errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSource {
    pub path: PathBuf,
    /// `option ca_file` or `AWS_CA_BUNDLE`.
    pub origin: String,
}

/// The CA file to load: the `ca_file` option when given (it wins), else the first of `env_vars`
/// that is set and not empty. `None`: only the system roots.
pub fn ca_source(option: Option<&str>, env_vars: &[&str]) -> Option<CaSource> {
    if let Some(p) = option.filter(|p| !p.trim().is_empty()) {
        return Some(CaSource {
            path: PathBuf::from(p),
            origin: "option ca_file".to_string(),
        });
    }
    env_vars.iter().find_map(|k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(|v| CaSource {
                path: PathBuf::from(v),
                origin: (*k).to_string(),
            })
    })
}

/// Adds every certificate of the PEM bundle `src` to `c`'s trusted roots. A missing or
/// unreadable file, or one without a single PEM certificate, is an error naming the file and
/// where it was named (`store` is the store's display URL).
pub fn add_roots(mut c: ClientOptions, src: &CaSource, store: &str) -> Result<ClientOptions> {
    let shown = src.path.display();
    let data = std::fs::read(&src.path).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::InvalidInput
        };
        FerryError::new(
            kind,
            format!(
                "store {store}: cannot read the CA file {shown} (from {}): {e}",
                src.origin
            ),
        )
        .hint("name a readable PEM file of CA certificates, or unset it to use the system roots")
    })?;
    let certs = Certificate::from_pem_bundle(&data).map_err(|e| {
        FerryError::new(
            ErrorKind::InvalidInput,
            format!(
                "store {store}: the CA file {shown} (from {}) is not a PEM certificate bundle: {e}",
                src.origin
            ),
        )
    })?;
    if certs.is_empty() {
        return Err(FerryError::new(
            ErrorKind::InvalidInput,
            format!(
                "store {store}: the CA file {shown} (from {}) holds no PEM certificate \
                 (-----BEGIN CERTIFICATE-----)",
                src.origin
            ),
        ));
    }
    for cert in certs {
        c = c.with_root_certificate(cert);
    }
    Ok(c)
}

/// True when an error's text says the TLS handshake failed on the server's certificate (rustls
/// "invalid peer certificate: UnknownIssuer", "certificate ... NotValidForName", ...).
pub fn is_certificate_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("invalid peer certificate")
        || t.contains("unknownissuer")
        || t.contains("certificate verify failed")
        || t.contains("notvalidforname")
}

/// The text of the first error in `e`'s source chain that is a refused server certificate
/// (object_store's own message stops at "error sending request").
pub fn certificate_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if is_certificate_error(&text) {
            return Some(text);
        }
        cur = err.source();
    }
    None
}

/// `fe` (a failed open) told as a refused certificate: names the endpoint, is not retryable
/// (another try meets the same certificate) and says how to trust the server's CA.
pub fn refused(mut fe: FerryError, why: &str, endpoint: Option<&str>) -> FerryError {
    let of = endpoint
        .map(|e| format!(" of endpoint {e}"))
        .unwrap_or_default();
    fe.message = format!(
        "{}: the server's TLS certificate{of} was refused: {why}",
        fe.message
    );
    fe.retryable(false).hint(
        "the server's certificate is not signed by a trusted CA or is not for this host name: \
         name its CA (a PEM file) in the ca_file store option (S3: or AWS_CA_BUNDLE)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_wins_and_empty_values_count_as_unset() {
        let o = ca_source(Some("/x/ca.pem"), &["FERRY_TLS_TEST_UNSET_VAR"]).unwrap();
        assert_eq!(o.path, PathBuf::from("/x/ca.pem"));
        assert_eq!(o.origin, "option ca_file");
        assert_eq!(ca_source(Some(""), &["FERRY_TLS_TEST_UNSET_VAR"]), None);
    }

    #[test]
    fn a_missing_or_empty_file_names_the_file() {
        let src = CaSource {
            path: PathBuf::from("/nonexistent/ferry-ca.pem"),
            origin: "AWS_CA_BUNDLE".into(),
        };
        let e = add_roots(ClientOptions::new(), &src, "s3://b/p").unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(
            e.message.contains("/nonexistent/ferry-ca.pem"),
            "{}",
            e.message
        );
        assert!(e.message.contains("AWS_CA_BUNDLE"), "{}", e.message);

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.pem");
        std::fs::write(&p, "not a certificate\n").unwrap();
        let src = CaSource {
            path: p.clone(),
            origin: "option ca_file".into(),
        };
        let e = add_roots(ClientOptions::new(), &src, "s3://b/p").unwrap_err();
        assert!(
            e.message.contains("holds no PEM certificate"),
            "{}",
            e.message
        );
    }
}
