//! astra-sideloader for an Astra database on GCP: the DevOps API double
//! (`tests/common/astra.rs`) hands out `gs://ds-mig-<db>/<id>/sstables/` and a base64
//! service-account key (`TYPE_GOOGLE_CREDENTIALS_FILE`) that expires; uploads go to the real GCS
//! emulator (fake-gcs-server, `tests/setup/gcs.sh`) through the GCS authorization double
//! (`tests/common/gcs_auth.rs`), which lets a request in only with a bearer signed by an issued,
//! unexpired key.
//!
//! What ferry sends: its GCS store keeps object_store's credential chain, and object_store 0.14
//! (`gcp/credential.rs`: `ServiceAccountCredentials` has no `token_uri` field; `token_provider()`
//! builds a `SelfSignedJwt`) never exchanges the key at its `token_uri`: it signs a JWT with the
//! key (RS256, `kid` = `private_key_id`, `iss` = `sub` = `client_email`, `scope` =
//! devstorage.full_control, one hour) and sends that JWT itself as the bearer, which Google accepts
//! (AIP-4111 self-signed JWTs). The double checks that signature with the key's public key, so the
//! key is really parsed and used; its `/token` endpoint (the key's `token_uri`) stays unasked.

use crate::astra_harness as harness;
use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::astra::gcs_auth::{GcsAuth, Via};
use common::astra::{Config, DevOpsApi, Upload};
use harness::*;

#[test]
fn gcp_upload_with_the_service_account_key_of_the_migration_renewed_when_it_expires() {
    let Some(gcs) = common::gcs::gcs() else {
        return;
    };
    let Some(auth) = GcsAuth::start(&gcs) else {
        return;
    };
    let site = site(0);
    let mut cfg = Config::new(Upload::Gcp(auth.clone()));
    // Short keys and a slow link: the upload outlasts the first key, the renewal is needed.
    cfg.cred_lifetime = Duration::from_secs(4);
    let bucket = format!("ds-mig-{}", cfg.db_id);
    gcs.create_bucket(&bucket);
    let api = DevOpsApi::start(cfg);
    auth.set_delay(Duration::from_millis(250));
    let endpoint = format!("gcs_endpoint={}", auth.url());
    let mut f = command(
        &site,
        &api,
        None,
        &[
            "-p",
            &endpoint,
            "-p",
            "concurrency=2",
            "-p",
            "renew_before=2s",
        ],
    );
    for k in common::gcs::UNSET_ENV {
        f.cmd.env_remove(k);
    }
    let out = f.run();
    out.code(0)
        .stderr_has("MigrationDone")
        .stderr_lacks(&api.token());

    // Every object, by name and bytes, in the emulator (read there directly, not through ferry).
    let id = &api.migration_ids()[0];
    let prefix = format!("{id}/sstables/");
    let mut listed = BTreeMap::new();
    for name in gcs.list(&bucket, &prefix) {
        let data = gcs.get(&bucket, &name).expect("listed object readable");
        listed.insert(name.strip_prefix(&prefix).unwrap().to_string(), data);
    }
    check_upload(&site, &listed);

    // Every request ferry made to GCS was let in by a key the API issued, signed with it.
    let authorized = auth.authorized();
    assert!(
        authorized
            .iter()
            .any(|a| a.method == "POST" && a.path.contains("/upload/")),
        "no upload went through the authorization double: {authorized:?}"
    );
    let issued = auth.issued();
    let kids: BTreeSet<&str> = authorized.iter().map(|a| a.key_id.as_str()).collect();
    assert!(
        kids.len() >= 2,
        "the key was never renewed: {} issued, uploads signed with {kids:?}",
        issued.len()
    );
    assert!(
        authorized.iter().all(|a| a.via == Via::SelfSignedJwt),
        "object_store 0.14 sends a self-signed JWT; it now asked the token endpoint"
    );
    assert_eq!(auth.token_requests(), 0);
    // A refusal is only ever an expired key, retried with the renewed one (every object is
    // there, checked above).
    for r in auth.refused() {
        assert!(r.contains("expired"), "refused: {r}");
    }

    // No secret in ferry's output: key files, private keys, bearer tokens.
    for k in &issued {
        assert!(!out.stderr.contains(&k.file()), "keys.file in the log");
        let pem_line = k.private_key.lines().nth(3).unwrap();
        assert!(!out.stderr.contains(pem_line), "private_key in the log");
        assert!(!out.stdout.contains(pem_line), "private_key in the output");
    }
    for a in &authorized {
        assert!(!out.stderr.contains(&a.bearer), "a bearer token in the log");
    }
}

#[test]
fn a_key_gcs_refuses_stops_the_upload_with_a_clear_error_and_no_key_material() {
    let Some(gcs) = common::gcs::gcs() else {
        return;
    };
    let (Some(front), Some(other)) = (GcsAuth::start(&gcs), GcsAuth::start(&gcs)) else {
        return;
    };
    // The API hands out keys of `other`, but the bucket's front end knows only its own: GCS
    // answers 401 Invalid Credentials at the first request. (Bad `keys.file` forms, not base64
    // or not a service-account key, are refused before any store is opened: tests/lua/
    // astra_spec.lua.)
    let site = site(0);
    let cfg = Config::new(Upload::Gcp(other.clone()));
    gcs.create_bucket(&format!("ds-mig-{}", cfg.db_id));
    let api = DevOpsApi::start(cfg);
    let endpoint = format!("gcs_endpoint={}", front.url());
    let mut f = command(&site, &api, None, &["-p", &endpoint]);
    for k in common::gcs::UNSET_ENV {
        f.cmd.env_remove(k);
    }
    let out = f.run();
    assert_ne!(out.code, 0, "{}", out.stderr);
    out.stderr_has("gcp upload credentials the DevOps API gave")
        .stderr_has("Invalid Credentials")
        .stderr_has("run the same command again");
    assert_eq!(api.launches(), 0, "launched without the files");
    for k in other.issued() {
        let pem_line = k.private_key.lines().nth(3).unwrap();
        assert!(!out.stderr.contains(pem_line), "private_key in the log");
        assert!(!out.stderr.contains(&k.file()), "keys.file in the log");
    }
    assert!(front.authorized().is_empty());
    assert!(!front.refused().is_empty());
}
