//! Azure Blob Storage stores: `az://container/prefix` (also `azure://`, `abfs://`) and blob URLs
//! with a SAS query (`https://ACCOUNT.blob.core.windows.net/container/prefix?sv=...&sig=...`, or
//! path-style `http(s)://host:port/ACCOUNT/container/prefix?...` for emulators).
//!
//! Where the credentials come from, first match wins (docs/stores-azure.md):
//! 1. a SAS in the URL's query;
//! 2. one credential option: `access_key`, `sas` or `bearer_token` (two at once are refused);
//! 3. the `connection_string` option;
//! 4. `AZURE_STORAGE_CONNECTION_STRING`;
//! 5. object_store's `AZURE_*` variables, in its order (`MicrosoftAzureBuilder::build` and
//!    `resolve_credential_auto`, object_store 0.14 `src/azure/builder.rs`): `AZURE_STORAGE_TOKEN`,
//!    `AZURE_STORAGE_ACCOUNT_KEY`, workload identity, client secret, `AZURE_STORAGE_SAS_KEY`,
//!    the Azure CLI, managed identity.
//!
//! A higher source hides the credential variables of the lower ones (object_store alone would
//! let `AZURE_STORAGE_ACCOUNT_KEY` beat an explicit SAS). The account, endpoint and emulator
//! settings follow the same order, each setting on its own.

use std::sync::Arc;

use object_store::ClientOptions;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};

use super::azure_errors::Named;
use super::{OpenOptions, bad, bucket_and_prefix, client_options, opt_bool, retry_config};
use super::{naming_timeouts, unknown_option, with_prefix};
use crate::runtime::error::{ErrorKind, FerryError, Result};
use crate::runtime::redact::add_secret;
use crate::store::{Backend, Store};

/// A credential given explicitly (URL, option or connection string).
#[derive(Debug, Clone, PartialEq)]
enum Cred {
    AccessKey(String),
    Sas(Vec<(String, String)>),
    Bearer(String),
}

impl Cred {
    fn kind(&self) -> &'static str {
        match self {
            Cred::AccessKey(_) => "access_key",
            Cred::Sas(_) => "sas_token",
            Cred::Bearer(_) => "bearer_token",
        }
    }
}

/// What a connection string says (`Key=Value;...`, keys case-insensitive; the format of Azure
/// Storage's "Configure Azure Storage connection strings" page and Azurite's README).
#[derive(Debug, Default, PartialEq)]
struct ConnString {
    account: Option<String>,
    endpoint: Option<String>,
    cred: Option<Cred>,
    emulator: bool,
}

fn parse_connection_string(display: &str, text: &str) -> Result<ConnString> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(bad(
                display,
                "a connection string is Key=Value pairs separated by ';' (one part has no '=')",
            ));
        };
        fields.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let mut cs = ConnString {
        account: get("accountname"),
        ..ConnString::default()
    };
    if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        // The emulator's well-known account; DevelopmentStorageProxyUri is the blob host.
        cs.emulator = true;
        if let Some(proxy) = get("developmentstorageproxyuri") {
            let acc = cs.account.clone().unwrap_or("devstoreaccount1".into());
            cs.endpoint = Some(format!("{}/{acc}", proxy.trim_end_matches('/')));
        }
    }
    if let Some(ep) = get("blobendpoint") {
        cs.endpoint = Some(ep.trim_end_matches('/').to_string());
    } else if let (Some(acc), false) = (&cs.account, cs.emulator) {
        let proto = get("defaultendpointsprotocol").unwrap_or("https".into());
        let suffix = get("endpointsuffix").unwrap_or("core.windows.net".into());
        cs.endpoint = Some(format!("{proto}://{acc}.blob.{suffix}"));
    }
    if cs.account.is_none()
        && let Some(ep) = &cs.endpoint
    {
        cs.account = account_of_endpoint(ep);
    }
    let key = get("accountkey");
    let sas = get("sharedaccesssignature");
    cs.cred = match (key, sas) {
        (Some(_), Some(_)) => {
            return Err(bad(
                display,
                "the connection string has both AccountKey and SharedAccessSignature; keep one",
            ));
        }
        (Some(k), None) => {
            add_secret(&k);
            Some(Cred::AccessKey(k))
        }
        (None, Some(s)) => Some(Cred::Sas(parse_sas(display, &s)?)),
        (None, None) => None,
    };
    if cs.account.is_none() && !cs.emulator {
        return Err(bad(
            display,
            "the connection string names no account (AccountName or BlobEndpoint)",
        ));
    }
    Ok(cs)
}

/// `https://ACC.blob.core.windows.net[/]` or path-style `http://host:port/ACC`.
fn account_of_endpoint(ep: &str) -> Option<String> {
    let u = url::Url::parse(ep).ok()?;
    let host = u.host_str()?;
    if let Some((acc, rest)) = host.split_once('.')
        && rest.starts_with("blob.")
    {
        return Some(acc.to_string());
    }
    u.path_segments()?
        .find(|s| !s.is_empty())
        .map(str::to_string)
}

/// A SAS query (with or without the leading `?`) as its pairs, each value decoded. Its
/// signature is registered as a secret (encoded and decoded). Refused when it has no `sig`, and
/// when its expiry (`se`) has passed: the service would answer every request with a bare 403
/// (Azurite: `403 AuthorizationFailure` from `validateTime` in
/// dist/src/blob/authentication/BlobSASAuthenticator.js and AccountSASAuthenticator.js, which
/// does not say why), so ferry says so before the first request.
fn parse_sas(display: &str, text: &str) -> Result<Vec<(String, String)>> {
    let text = text.trim().trim_start_matches('?');
    add_secret(text);
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
        .map(|(a, b)| (a.into_owned(), b.into_owned()))
        .collect();
    let value = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let Some(sig) = value("sig") else {
        return Err(bad(
            display,
            "the SAS has no signature (sig=...); give the whole SAS query string",
        ));
    };
    add_secret(&sig);
    for (raw_k, raw_v) in text.split('&').filter_map(|p| p.split_once('=')) {
        if raw_k == "sig" {
            add_secret(raw_v);
        }
    }
    if let Some(se) = value("se") {
        let expiry = chrono::DateTime::parse_from_rfc3339(&se)
            .map(|t| t.with_timezone(&chrono::Utc))
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(&se, "%Y-%m-%d")
                    .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
            });
        if let Ok(t) = expiry
            && t < chrono::Utc::now()
        {
            return Err(FerryError::new(
                ErrorKind::Auth,
                format!("store {display}: the SAS expired at {se} (its se= field)"),
            )
            .hint("get a new SAS (az storage container generate-sas, or the portal) and retry"));
        }
    }
    Ok(pairs)
}

/// Keys of object_store's configuration that carry or choose a credential.
fn is_credential_key(k: &AzureConfigKey) -> bool {
    use AzureConfigKey as K;
    matches!(
        k,
        K::AccessKey
            | K::SasKey
            | K::Token
            | K::ClientId
            | K::ClientSecret
            | K::FederatedTokenFile
            | K::UseAzureCli
            | K::CredentialType
            | K::FabricSessionToken
            | K::FabricTokenServiceUrl
    )
}

/// ferry's client options plus extra trusted roots for the endpoint: the `ca_file` option, else
/// `REQUESTS_CA_BUNDLE` (the variable the Azure CLI reads for a private CA: it is Python's
/// `requests` setting). A PEM bundle; the system's roots stay trusted too.
fn azure_client_options(display: &str, opts: &OpenOptions) -> Result<ClientOptions> {
    let mut c = client_options(opts, display)?;
    let ca = match opts.values.get("ca_file") {
        Some(p) => Some(("ca_file", p.clone())),
        None => std::env::var("REQUESTS_CA_BUNDLE")
            .ok()
            .filter(|p| !p.is_empty())
            .map(|p| ("REQUESTS_CA_BUNDLE", p)),
    };
    if let Some((source, path)) = &ca {
        let path = path.as_str();
        let pem = std::fs::read(path)
            .map_err(|e| FerryError::io(format!("store {display}: reading {source} {path}"), &e))?;
        let certs = object_store::Certificate::from_pem_bundle(&pem)
            .map_err(|e| bad(display, format!("{source} {path} is not a PEM bundle: {e}")))?;
        if certs.is_empty() {
            return Err(bad(
                display,
                format!("{source} {path} holds no certificate"),
            ));
        }
        for cert in certs {
            c = c.with_root_certificate(cert);
        }
    }
    Ok(c)
}

/// Opens `az://container/prefix`; `container_prefix` is given by [`open_url`].
pub(super) fn open(
    u: &url::Url,
    display: &str,
    opts: &OpenOptions,
    container_prefix: Option<(String, String)>,
) -> Result<Store> {
    let (container, prefix) = container_prefix.unwrap_or_else(|| bucket_and_prefix(u));
    if container.is_empty() {
        return Err(bad(
            display,
            "the URL names no container: az://container/prefix",
        ));
    }
    // Explicit credential options (aliases as object_store spells them).
    let mut explicit: Vec<(String, Cred)> = Vec::new();
    for (k, v) in &opts.values {
        let cred = match k.as_str() {
            "access_key" | "account_key" | "master_key" | "azure_storage_account_key" => {
                add_secret(v);
                Cred::AccessKey(v.clone())
            }
            "sas" | "sas_token" | "sas_key" | "azure_storage_sas_token" => {
                Cred::Sas(parse_sas(display, v)?)
            }
            "bearer_token" | "token" | "azure_storage_token" => {
                add_secret(v);
                Cred::Bearer(v.clone())
            }
            _ => continue,
        };
        explicit.push((k.clone(), cred));
    }
    if explicit.len() > 1 {
        let names: Vec<&str> = explicit.iter().map(|(k, _)| k.as_str()).collect();
        return Err(bad(
            display,
            format!(
                "more than one credential given ({}); keep one",
                names.join(", ")
            ),
        ));
    }
    let conn_text = opts
        .values
        .get("connection_string")
        .cloned()
        .or_else(|| std::env::var("AZURE_STORAGE_CONNECTION_STRING").ok())
        .filter(|t| !t.trim().is_empty());
    let conn = match &conn_text {
        Some(t) => {
            add_secret(t);
            Some(parse_connection_string(display, t)?)
        }
        None => None,
    };
    let cred = explicit
        .pop()
        .map(|(_, c)| c)
        .or_else(|| conn.as_ref().and_then(|c| c.cred.clone()));

    let mut b = MicrosoftAzureBuilder::new()
        .with_container_name(&container)
        .with_retry(retry_config())
        .with_client_options(azure_client_options(display, opts)?)
        .with_http_connector(naming_timeouts(
            object_store::client::ReqwestConnector::default(),
            opts,
            display,
        )?);
    // The environment, as MicrosoftAzureBuilder::from_env reads it, without the credential
    // variables when a higher source gives one.
    for (k, v) in std::env::vars() {
        if !k.starts_with("AZURE_") || k == "AZURE_STORAGE_CONNECTION_STRING" {
            continue;
        }
        let Ok(key) = k.to_ascii_lowercase().parse::<AzureConfigKey>() else {
            continue;
        };
        if cred.is_some() && is_credential_key(&key) {
            continue;
        }
        if matches!(
            key,
            AzureConfigKey::AccessKey
                | AzureConfigKey::SasKey
                | AzureConfigKey::Token
                | AzureConfigKey::ClientSecret
        ) {
            add_secret(&v);
        }
        b = b.with_config(key, v);
    }
    if let Ok(ep) = std::env::var("IDENTITY_ENDPOINT") {
        b = b.with_msi_endpoint(ep);
    }
    let mut endpoint_given = false;
    if let Some(cs) = &conn {
        if let Some(acc) = &cs.account {
            b = b.with_account(acc);
        }
        if cs.emulator {
            b = b.with_use_emulator(true);
        }
        if let Some(ep) = &cs.endpoint {
            b = b.with_endpoint(ep.clone());
            endpoint_given = true;
        }
    }
    for (k, v) in &opts.values {
        b = match k.as_str() {
            "layout" | "ca_file" | "connection_string" => b,
            // In the client options (azure_client_options).
            "timeout" | "connect_timeout" => b,
            "access_key" | "account_key" | "master_key" | "azure_storage_account_key" => b,
            "sas" | "sas_token" | "sas_key" | "azure_storage_sas_token" => b,
            "bearer_token" | "token" | "azure_storage_token" => b,
            "account" | "account_name" => b.with_account(v),
            "endpoint" => {
                endpoint_given = true;
                b.with_endpoint(v.clone())
            }
            "allow_http" => b.with_allow_http(opt_bool(opts, k)),
            "use_emulator" => b.with_use_emulator(opt_bool(opts, k)),
            other => match other.parse::<AzureConfigKey>() {
                Ok(key) if is_credential_key(&key) && cred.is_some() => {
                    return Err(bad(
                        display,
                        format!("option '{other}' given next to another credential; keep one"),
                    ));
                }
                Ok(key) => b.with_config(key, v),
                Err(_) => return Err(unknown_option(display, other, "an Azure")),
            },
        };
    }
    // object_store's emulator mode takes its host from AZURITE_BLOB_STORAGE_URL and ignores the
    // endpoint; an endpoint given here (option, URL or connection string) is meant, so it turns
    // emulator mode off and is used as the account URL (path-style for emulators).
    if endpoint_given {
        b = b.with_use_emulator(false);
        if let Some(ep) = b.get_config_value(&AzureConfigKey::Endpoint)
            && ep.starts_with("http://")
            && !opts.values.contains_key("allow_http")
        {
            b = b.with_allow_http(true);
        }
    }
    if b.get_config_value(&AzureConfigKey::AccountName).is_none()
        && let Some(ep) = b.get_config_value(&AzureConfigKey::Endpoint)
        && let Some(acc) = account_of_endpoint(&ep)
    {
        b = b.with_account(acc);
    }
    match &cred {
        Some(Cred::AccessKey(k)) => b = b.with_access_key(k),
        Some(Cred::Sas(pairs)) => b = b.with_sas_authorization(pairs.clone()),
        Some(Cred::Bearer(t)) => b = b.with_bearer_token_authorization(t),
        None => {}
    }
    if let Some(c) = &cred {
        b = b.with_credential_type(c.kind());
    }
    let account = b
        .get_config_value(&AzureConfigKey::AccountName)
        .unwrap_or_else(|| "devstoreaccount1".into());
    let az = b.build().map_err(|e| {
        bad(display, e).hint(
            "give the account (option account, AZURE_STORAGE_ACCOUNT_NAME or a connection \
             string) and one credential; see docs/stores-azure.md",
        )
    })?;
    Ok(Store {
        inner: with_prefix(Arc::new(Named::new(az, &account, &container)), &prefix),
        display: display.to_string(),
        backend: Backend::Azure,
        uploads: None,
    })
}

/// `https://ACCOUNT.blob.core.windows.net/container/prefix?SAS`, or path-style
/// `http(s)://host:port/ACCOUNT/container/prefix?SAS` (Azurite and other emulators).
pub(super) fn open_url(u: &url::Url, display: &str, opts: &OpenOptions) -> Result<Store> {
    let host = u.host_str().unwrap_or("").to_string();
    let mut segments: Vec<String> = u
        .path_segments()
        .map(|s| s.filter(|x| !x.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let mut o = opts.clone();
    let account = if let Some(acc) = host.strip_suffix(".blob.core.windows.net") {
        acc.to_string()
    } else {
        if segments.is_empty() {
            return Err(bad(
                display,
                "expected http(s)://host/ACCOUNT/container/prefix?SAS",
            ));
        }
        let acc = segments.remove(0);
        let mut endpoint = format!("{}://{}", u.scheme(), host);
        if let Some(port) = u.port() {
            endpoint.push_str(&format!(":{port}"));
        }
        endpoint.push_str(&format!("/{acc}"));
        o.values.entry("endpoint".into()).or_insert(endpoint);
        if u.scheme() == "http" {
            o.values.entry("allow_http".into()).or_insert("true".into());
        }
        acc
    };
    if segments.is_empty() {
        return Err(bad(display, "the URL names no container"));
    }
    let container = segments.remove(0);
    let prefix = segments.join("/");
    o.values.entry("account".into()).or_insert(account);
    if let Some(q) = u.query().filter(|q| !q.is_empty()) {
        add_secret(q);
        if let Some(k) = ["sas", "sas_token", "sas_key"]
            .into_iter()
            .find(|k| o.values.contains_key(*k))
        {
            return Err(bad(
                display,
                format!("the URL carries a SAS and option '{k}' gives another; keep one"),
            ));
        }
        o.values.insert("sas".into(), q.to_string());
    }
    open(u, display, &o, Some((container, prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_parse_like_azure_storage_reads_them() {
        let cs = parse_connection_string(
            "x",
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5PT0=;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(cs.account.as_deref(), Some("acct"));
        assert_eq!(
            cs.endpoint.as_deref(),
            Some("https://acct.blob.core.windows.net")
        );
        assert_eq!(cs.cred, Some(Cred::AccessKey("a2V5PT0=".into())));
        let cs = parse_connection_string(
            "x",
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;SharedAccessSignature=sv=2020-12-06&sig=abc%2B",
        )
        .unwrap();
        assert_eq!(cs.account.as_deref(), Some("devstoreaccount1"));
        assert_eq!(
            cs.endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        assert_eq!(
            cs.cred,
            Some(Cred::Sas(vec![
                ("sv".into(), "2020-12-06".into()),
                ("sig".into(), "abc+".into())
            ]))
        );
        let cs = parse_connection_string("x", "UseDevelopmentStorage=true").unwrap();
        assert!(cs.emulator && cs.cred.is_none() && cs.endpoint.is_none());
        assert!(parse_connection_string("x", "AccountKey=abc").is_err());
        assert!(parse_connection_string("x", "AccountName=a;junk").is_err());
    }

    #[test]
    fn a_sas_without_signature_or_past_its_expiry_is_refused() {
        assert!(parse_sas("x", "sv=2020-12-06&sp=r").is_err());
        let e = parse_sas("x", "sv=2020-12-06&se=2001-01-01T00%3A00%3A00Z&sig=abc").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(
            e.message.contains("expired at 2001-01-01T00:00:00Z"),
            "{}",
            e.message
        );
        assert!(parse_sas("x", "?se=2999-01-01&sig=abc").is_ok());
    }
}
