//! Azure credentials against Azurite (tests/setup/azurite.sh): account key from options, the
//! `AZURE_*` variables and connection strings; container and account SAS in the URL and as an
//! option (read-only and expired ones refused); bearer tokens on the second Azurite, the one with
//! HTTPS and `--oauth basic`; the precedence between them (src/store/open/azure.rs); and the
//! conformance suite over each credential path.

use crate::common;

use common::Workspace;
use common::azurite::{Azurite, OauthAzurite, UNSET_ENV, azurite, azurite_oauth};

/// A ferry run with no Azure variables from this machine, plus `env`.
fn run(ws: &Workspace, script: &str, body: &str, env: &[(&str, &str)]) -> common::Output {
    ws.write(script, body);
    let mut f = ws.ferry().args(["run", &format!("./{script}"), "-q"]);
    for k in UNSET_ENV {
        f.cmd.env_remove(k);
    }
    for (k, v) in env {
        f = f.env(k, v);
    }
    f.run()
}

/// tests/lua/store_conformance.lua on `url`, credentials from `env` only.
fn conformance(ws: &Workspace, url: &str, env: &[(String, String)]) {
    let mut f = ws.conformance_run(&common::conformance_script(), url);
    for k in UNSET_ENV {
        f.cmd.env_remove(k);
    }
    for (k, v) in env {
        f = f.env(k, v);
    }
    f.run().code(0).stdout_has("conformance ok");
}

/// A Lua helper: `expect_fail(url, opts, kind, needles...)` asserts that opening (and one put)
/// fails with that kind and every needle in the message, and prints the message.
const EXPECT_FAIL: &str = r#"
local function expect_fail(url, opts, kind, ...)
  local ok, err = pcall(function()
    local s = ferry.store.open(url, opts)
    s:put("probe.txt", "x")
  end)
  assert(not ok, "expected a failure for " .. url)
  assert(err.kind == kind, ("kind %s (expected %s): %s"):format(err.kind, kind, err.message))
  for _, needle in ipairs({...}) do
    assert(err.message:find(needle, 1, true), ("message lacks %q: %s"):format(needle, err.message))
  end
  print("refused: " .. err.message)
end
local function roundtrip(url, opts, key)
  local s = ferry.store.open(url, opts)
  s:put(key, "via " .. key)
  assert(s:get(key) == "via " .. key)
  local n = 0
  for e in s:list() do if e.key == key then n = n + 1 end end
  assert(n == 1, key .. " not listed")
end
"#;

/// A valid base64 key that is not the account's.
const WRONG_KEY: &str =
    "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=";

fn conn_string(az: &Azurite) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={};",
        az.account, az.key, az.endpoint
    )
}

#[test]
fn azure_account_key_from_options_variables_and_connection_strings() {
    let Some(az) = azurite() else { return };
    let c = az.unique_container("key");
    let ws = Workspace::new();
    let url = format!("az://{c}/base");
    let cs = conn_string(&az);
    let body = format!(
        r#"{EXPECT_FAIL}
roundtrip({url:?}, {{account = {acc:?}, access_key = {key:?}, endpoint = {ep:?}}}, "options.txt")
roundtrip({url:?}, {{connection_string = {cs:?}}}, "option-cs.txt")
print("key paths ok")
"#,
        acc = az.account,
        key = az.key,
        ep = az.endpoint,
    );
    run(&ws, "opts.lua", &body, &[])
        .code(0)
        .stdout_has("key paths ok");

    // The usual variables, with a non-emulator endpoint: AZURE_ALLOW_HTTP must survive ferry's
    // own client options.
    let body = format!("{EXPECT_FAIL}\nroundtrip({url:?}, {{}}, \"env.txt\")\nprint(\"env ok\")\n");
    run(
        &ws,
        "env.lua",
        &body,
        &[
            ("AZURE_STORAGE_ACCOUNT_NAME", &az.account),
            ("AZURE_STORAGE_ACCOUNT_KEY", &az.key),
            ("AZURE_STORAGE_ENDPOINT", &az.endpoint),
            ("AZURE_ALLOW_HTTP", "true"),
        ],
    )
    .code(0)
    .stdout_has("env ok");

    // AZURE_STORAGE_CONNECTION_STRING, and the emulator's own form.
    let body =
        format!("{EXPECT_FAIL}\nroundtrip({url:?}, {{}}, \"env-cs.txt\")\nprint(\"cs ok\")\n");
    run(
        &ws,
        "cs.lua",
        &body,
        &[("AZURE_STORAGE_CONNECTION_STRING", &cs)],
    )
    .code(0)
    .stdout_has("cs ok");
    run(
        &ws,
        "dev.lua",
        &body,
        &[
            (
                "AZURE_STORAGE_CONNECTION_STRING",
                "UseDevelopmentStorage=true",
            ),
            ("AZURITE_BLOB_STORAGE_URL", &az.blob_url),
        ],
    )
    .code(0)
    .stdout_has("cs ok");

    // Every key landed in the container, seen by Azurite itself.
    let listed = az
        .request(
            "GET",
            &c,
            &[("restype", "container"), ("comp", "list")],
            &[],
            b"",
        )
        .unwrap()
        .body_text();
    for k in ["options.txt", "option-cs.txt", "env.txt", "env-cs.txt"] {
        assert!(
            listed.contains(&format!("<Name>base/{k}</Name>")),
            "{k}: {listed}"
        );
    }
    az.delete_container(&c);
}

#[test]
fn azure_explicit_credentials_beat_the_environment_and_two_are_refused() {
    let Some(az) = azurite() else { return };
    let c = az.unique_container("prec");
    let ws = Workspace::new();
    let url = format!("az://{c}/p");
    let sas = az.container_sas(
        &c,
        "racwdl",
        chrono::Utc::now() + chrono::Duration::hours(1),
    );
    let sas_url = format!("{}/p?{sas}", az.container_url(&c));
    let cs = conn_string(&az);
    let body = format!(
        r#"{EXPECT_FAIL}
-- The environment holds a wrong key; each explicit credential wins over it.
roundtrip({url:?}, {{access_key = {key:?}}}, "option-key.txt")
roundtrip({url:?}, {{sas = {sas:?}}}, "option-sas.txt")
roundtrip({url:?}, {{connection_string = {cs:?}}}, "option-cs.txt")
roundtrip({sas_url:?}, {{}}, "url-sas.txt")
-- ... and the wrong key is really what the environment gives.
expect_fail({url:?}, {{}}, "auth", "403")
expect_fail({url:?}, {{access_key = {key:?}, sas = {sas:?}}}, "invalid_input", "more than one credential", "access_key", "sas")
expect_fail({sas_url:?}, {{sas = {sas:?}}}, "invalid_input", "the URL carries a SAS and option 'sas'")
expect_fail({url:?}, {{connection_string = "AccountName=a;AccountKey=b;SharedAccessSignature=sig=c"}}, "invalid_input", "both AccountKey and SharedAccessSignature")
expect_fail({url:?}, {{connection_string = "AccountName"}}, "invalid_input", "Key=Value")
print("precedence ok")
"#,
        key = az.key,
    );
    let out = run(
        &ws,
        "prec.lua",
        &body,
        &[
            ("AZURE_STORAGE_ACCOUNT_NAME", &az.account),
            ("AZURE_STORAGE_ACCOUNT_KEY", WRONG_KEY),
            ("AZURE_STORAGE_ENDPOINT", &az.endpoint),
            ("AZURE_ALLOW_HTTP", "true"),
        ],
    );
    out.code(0).stdout_has("precedence ok");
    assert!(!out.stdout.contains(&az.key) && !out.stderr.contains(&az.key));
    az.delete_container(&c);
}

#[test]
fn azure_wrong_key_is_an_auth_error_naming_account_and_container_and_never_the_key() {
    let Some(az) = azurite() else { return };
    let c = az.unique_container("wrongkey");
    let ws = Workspace::new();
    let url = format!("az://{c}/x");
    let body = format!(
        r#"{EXPECT_FAIL}
expect_fail({url:?}, {{account = {acc:?}, access_key = {WRONG_KEY:?}, endpoint = {ep:?}}}, "auth",
  "account {acc}", "container {c}", "403 Forbidden", "AuthorizationFailure")
expect_fail({url:?}, {{connection_string = "AccountName={acc};AccountKey={WRONG_KEY};BlobEndpoint={ep}"}}, "auth",
  "account {acc}", "container {c}")
print("wrong key ok")
"#,
        acc = az.account,
        ep = az.endpoint,
    );
    let out = run(&ws, "wrong.lua", &body, &[]);
    out.code(0).stdout_has("wrong key ok");
    assert!(!out.stdout.contains(WRONG_KEY), "{}", out.stdout);
    // Uncaught, through ferry's own error report (stderr), with the key from the environment.
    let out = run(
        &ws,
        "uncaught.lua",
        &format!("ferry.store.open({url:?})\n"),
        &[
            ("AZURE_STORAGE_ACCOUNT_NAME", &az.account),
            ("AZURE_STORAGE_ACCOUNT_KEY", WRONG_KEY),
            ("AZURE_STORAGE_ENDPOINT", &az.endpoint),
            ("AZURE_ALLOW_HTTP", "true"),
        ],
    );
    assert_ne!(out.code, 0);
    out.stderr_has(&format!("account {}", az.account))
        .stderr_has(&format!("container {c}"))
        .stderr_has("check the credentials")
        .stderr_lacks(WRONG_KEY)
        .stderr_lacks("<?xml");
    assert!(!out.stdout.contains(WRONG_KEY));
    az.delete_container(&c);
}

#[test]
fn azure_container_and_account_sas_in_the_url_and_as_an_option() {
    let Some(az) = azurite() else { return };
    let c = az.unique_container("sas2");
    let ws = Workspace::new();
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let csas = az.container_sas(&c, "racwdl", later);
    let csas_ro = az.container_sas(&c, "rl", later);
    let asas = az.account_sas("rwdlac");
    let base = az.container_url(&c);
    let url = format!("az://{c}/o");
    let body = format!(
        r#"{EXPECT_FAIL}
local opt = {{account = {acc:?}, endpoint = {ep:?}}}
roundtrip({u1:?}, {{}}, "container-sas-url.txt")
roundtrip({u2:?}, {{}}, "account-sas-url.txt")
opt.sas = {csas:?}; roundtrip({url:?}, opt, "container-sas-opt.txt")
opt.sas = "?" .. {asas:?}; roundtrip({url:?}, opt, "account-sas-opt.txt")
-- read-only container SAS: reads work, a write is refused by Azurite and named clearly
local ro = ferry.store.open({u3:?})
assert(ro:get("container-sas-url.txt") == "via container-sas-url.txt")
local ok, err = pcall(ro.put, ro, "nope.txt", "x")
assert(not ok and err.kind == "auth", tostring(err.kind) .. ": " .. tostring(err.message))
for _, needle in ipairs({{"account {acc}", "container {c}", "403", "AuthorizationPermissionMismatch"}}) do
  assert(err.message:find(needle, 1, true), needle .. " missing: " .. err.message)
end
assert(not err.message:find("sig=", 1, true), err.message)
print("read-only: " .. err.message)
expect_fail({url:?}, {{account = {acc:?}, endpoint = {ep:?}, sas = "sv=2020-12-06&sp=r"}}, "invalid_input", "no signature")
print("sas ok")
"#,
        acc = az.account,
        ep = az.endpoint,
        u1 = format!("{base}/o?{csas}"),
        u2 = format!("{base}/o?{asas}"),
        u3 = format!("{base}/o?{csas_ro}"),
    );
    let out = run(&ws, "sas.lua", &body, &[]);
    out.code(0).stdout_has("sas ok");
    for sas in [&csas, &csas_ro, &asas] {
        let sig = sas.split("sig=").nth(1).unwrap();
        assert!(
            !out.stderr.contains(sig) && !out.stdout.contains(sig),
            "a signature leaked"
        );
    }
    let listed = az
        .request(
            "GET",
            &c,
            &[("restype", "container"), ("comp", "list")],
            &[],
            b"",
        )
        .unwrap()
        .body_text();
    for k in [
        "container-sas-url.txt",
        "account-sas-url.txt",
        "container-sas-opt.txt",
        "account-sas-opt.txt",
    ] {
        assert!(
            listed.contains(&format!("<Name>o/{k}</Name>")),
            "{k}: {listed}"
        );
    }
    assert!(!listed.contains("nope.txt"), "{listed}");
    az.delete_container(&c);
}

#[test]
fn azure_expired_sas_is_refused_before_any_request_and_by_azurite() {
    let Some(az) = azurite() else { return };
    let c = az.unique_container("expired");
    let ws = Workspace::new();
    let past = chrono::Utc::now() - chrono::Duration::hours(2);
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    let expired_c = az.container_sas(&c, "rl", past);
    let expired_a = az.account_sas_expiring("rl", past);
    // The same signer with a future expiry is accepted, and Azurite refuses the expired ones:
    // the refusal comes from the expiry, not from a bad signature.
    let list = "restype=container&comp=list";
    for (fresh, stale) in [
        (az.container_sas(&c, "rl", later), &expired_c),
        (az.account_sas_expiring("rl", later), &expired_a),
    ] {
        let ok = az.get_with_query(&c, &format!("{list}&{fresh}")).unwrap();
        assert_eq!(ok.status, 200, "{}", ok.body_text());
        let no = az.get_with_query(&c, &format!("{list}&{stale}")).unwrap();
        assert_eq!(no.status, 403, "{}", no.body_text());
        // Azurite's answer to a SAS past its expiry: `getAuthorizationFailure` after
        // `validateTime` (dist/src/blob/authentication/BlobSASAuthenticator.js and
        // AccountSASAuthenticator.js).
        assert!(
            no.body_text().contains("AuthorizationFailure"),
            "{}",
            no.body_text()
        );
    }
    let base = az.container_url(&c);
    let body = format!(
        r#"{EXPECT_FAIL}
expect_fail({u1:?}, {{}}, "auth", "the SAS expired at", "se=")
expect_fail({u2:?}, {{}}, "auth", "the SAS expired at")
expect_fail("az://{c}/x", {{account = {acc:?}, endpoint = {ep:?}, sas = {s:?}}}, "auth", "the SAS expired at")
print("expired ok")
"#,
        u1 = format!("{base}/x?{expired_c}"),
        u2 = format!("{base}/x?{expired_a}"),
        s = expired_c,
        acc = az.account,
        ep = az.endpoint,
    );
    let out = run(&ws, "expired.lua", &body, &[]);
    out.code(0).stdout_has("expired ok");
    let sig = expired_c.split("sig=").nth(1).unwrap();
    assert!(!out.stdout.contains(sig) && !out.stderr.contains(sig));
    az.delete_container(&c);
}

fn bearer_env(oa: &OauthAzurite, token: &str) -> Vec<(String, String)> {
    vec![
        (
            "AZURE_STORAGE_ACCOUNT_NAME".into(),
            "devstoreaccount1".into(),
        ),
        ("AZURE_STORAGE_ENDPOINT".into(), oa.endpoint.clone()),
        ("AZURE_STORAGE_TOKEN".into(), token.into()),
        ("REQUESTS_CA_BUNDLE".into(), oa.ca_file.clone()),
    ]
}

#[test]
fn azure_bearer_token_over_https_accepted_and_bad_tokens_or_cas_refused() {
    let Some(oa) =
        azurite_oauth("azure_bearer_token_over_https_accepted_and_bad_tokens_or_cas_refused")
    else {
        return;
    };
    let c = oa.unique_container("bearer");
    let ws = Workspace::new();
    let good = oa.token(3600, "https://storage.azure.com");
    let expired = oa.token(-600, "https://storage.azure.com");
    let wrong_aud = oa.token(3600, "https://vault.azure.net");
    let account_aud = oa.token(3600, "https://devstoreaccount1.blob.core.windows.net");
    let url = format!("az://{c}/t");
    let body = format!(
        r#"{EXPECT_FAIL}
local function o(t, extra)
  local r = {{account = "devstoreaccount1", endpoint = {ep:?}, ca_file = {ca:?}, bearer_token = t}}
  for k, v in pairs(extra or {{}}) do r[k] = v end
  return r
end
roundtrip({url:?}, o({good:?}), "bearer.txt")
roundtrip({url:?}, o({account_aud:?}), "bearer-account-aud.txt")
expect_fail({url:?}, o({expired:?}), "auth", "account devstoreaccount1", "container {c}", "The token is expired")
expect_fail({url:?}, o({wrong_aud:?}), "auth", "container {c}", "Invalid token audience")
expect_fail({url:?}, o("not-a-jwt"), "auth", "container {c}", "Bearer is not supported")
-- the endpoint's certificate is checked: another CA, or none, is refused (never plain HTTP)
expect_fail({url:?}, o({good:?}, {{ca_file = {other:?}}}), "unavailable", "127.0.0.1:10010", "UnknownIssuer", "give its CA with ca_file")
expect_fail({url:?}, {{account = "devstoreaccount1", endpoint = {ep:?}, bearer_token = {good:?}}}, "unavailable", "certificate")
expect_fail({url:?}, o({good:?}, {{ca_file = "/nonexistent/ca.pem"}}), "not_found", "ca_file /nonexistent/ca.pem")
print("bearer ok")
"#,
        ep = oa.endpoint,
        ca = oa.ca_file,
        other = oa.other_ca_file,
    );
    let out = run(&ws, "bearer.lua", &body, &[]);
    out.code(0).stdout_has("bearer ok");
    for t in [&good, &expired, &wrong_aud] {
        let claims = t.split('.').nth(1).unwrap();
        assert!(
            !out.stdout.contains(claims) && !out.stderr.contains(claims),
            "a token leaked"
        );
    }
    // Azurite has the objects (listed with a token of the test's own).
    let listed = oa
        .curl(&good, "GET", &format!("{c}?restype=container&comp=list"))
        .unwrap();
    assert!(listed.contains("<Name>t/bearer.txt</Name>"), "{listed}");
    assert!(
        listed.contains("<Name>t/bearer-account-aud.txt</Name>"),
        "{listed}"
    );
    // From the environment (AZURE_STORAGE_TOKEN, REQUESTS_CA_BUNDLE) as well.
    let env = bearer_env(&oa, &good);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let body =
        format!("{EXPECT_FAIL}\nroundtrip({url:?}, {{}}, \"bearer-env.txt\")\nprint(\"env ok\")\n");
    run(&ws, "bearer_env.lua", &body, &env_ref)
        .code(0)
        .stdout_has("env ok");
}

#[test]
fn conformance_azure_connection_string() {
    let Some(az) = azurite() else { return };
    let c = az.unique_container("conf-cs");
    let ws = Workspace::new();
    let env = vec![(
        "AZURE_STORAGE_CONNECTION_STRING".to_string(),
        conn_string(&az),
    )];
    conformance(&ws, &format!("az://{c}/some/prefix"), &env);
    az.delete_container(&c);
}

#[test]
fn conformance_azure_container_sas_url() {
    let Some(az) = azurite() else { return };
    let c = az.unique_container("conf-sas");
    let ws = Workspace::new();
    let sas = az.container_sas(
        &c,
        "racwdl",
        chrono::Utc::now() + chrono::Duration::hours(2),
    );
    conformance(
        &ws,
        &format!("{}/some/prefix?{sas}", az.container_url(&c)),
        &[],
    );
    az.delete_container(&c);
}

#[test]
fn conformance_azure_bearer_token_https() {
    let Some(oa) = azurite_oauth("conformance_azure_bearer_token_https") else {
        return;
    };
    let c = oa.unique_container("conf-bearer");
    let ws = Workspace::new();
    let env = bearer_env(&oa, &oa.token(3600, "https://storage.azure.com"));
    conformance(&ws, &format!("az://{c}/some/prefix"), &env);
}
