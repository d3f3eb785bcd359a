//! starrocks-sync over TLS to the FE query ports (the StarRocks double's MySQL front, with
//! opensrv-mysql's TLS: CLIENT_SSL offered in the handshake, Protocol::SSLRequest honoured) and
//! the certificate checks of ferry's MySQL client (src/sql/tls.rs).

use crate::common;

use crate::starrocks::site;

use common::s3::TestTls;
use site::site;

fn tls_params(tls: &TestTls, mode: &str, ca: &str) -> Vec<String> {
    let ca = tls.file(ca).display().to_string();
    let mut v = Vec::new();
    for side in ["source", "target"] {
        v.push("-p".to_string());
        v.push(format!("{side}_cluster_ssl_mode={mode}"));
        v.push("-p".to_string());
        v.push(format!("{side}_cluster_ssl_ca={ca}"));
    }
    v
}

#[test]
fn a_sync_over_tls_verifies_both_fes_and_a_wrong_ca_is_refused_before_anything_changes() {
    let Some(s) = site("") else { return };
    let tls = TestTls::for_localhost();
    s.src.enable_tls(&tls);
    s.dst.enable_tls(&tls);

    // A CA that did not sign the FE's certificate: refused at login, naming the FE.
    let wrong = tls_params(&tls, "verify-full", "other-ca.pem");
    let args: Vec<&str> = wrong.iter().map(String::as_str).collect();
    s.run(&args)
        .code(1)
        .stderr_has("cannot log in to the source cluster's FE query port 127.0.0.1")
        .stderr_has("source_cluster_ssl_mode");
    assert!(s.dst.loads().is_empty(), "a load after a refused login");
    // The client asked for TLS (and then refused the certificate).
    assert!(s.src.tls_sessions() >= 1, "the client never asked for TLS");

    let right = tls_params(&tls, "verify-full", "ca.pem");
    let args: Vec<&str> = right.iter().map(String::as_str).collect();
    s.run(&args).code(0);
    s.assert_same("shop", "orders");
    s.assert_same("shop", "customers");
    assert!(s.src.tls_sessions() >= 2, "no TLS session to the source FE");
    assert!(s.dst.tls_sessions() >= 1, "no TLS session to the target FE");
    s.stop();
}

#[test]
fn require_against_an_fe_without_tls_is_refused_and_the_default_stays_plain() {
    let Some(s) = site("") else { return };
    let tls = TestTls::for_localhost();
    // Only the target offers TLS.
    s.dst.enable_tls(&tls);
    s.run(&["-p", "source_cluster_ssl_mode=require"])
        .code(1)
        .stderr_has("cannot log in to the source cluster's FE query port");
    assert!(s.dst.loads().is_empty());
    // No ssl settings: plain connections, as before (the target offers TLS, nobody asks).
    s.run(&[]).code(0);
    s.assert_same("shop", "orders");
    assert_eq!(s.dst.tls_sessions(), 0, "TLS without being asked for");
    s.stop();
}
