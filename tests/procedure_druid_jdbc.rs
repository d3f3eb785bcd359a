//! druid-deep-storage reaching the metadata store the way Druid's connector would: the query of
//! druid.metadata.storage.connector.connectURI and druid.metadata.{mysql,postgres}.ssl.* are
//! honoured (TLS, currentSchema) or refused with a clear error, never dropped; URLs naming
//! several servers are refused. Real MariaDB and PostgreSQL (neither serves TLS here, so a
//! TLS-requiring setting must make the connection fail rather than fall back to plain text).

use crate::common;

use common::db;
use common::druid::{self as fx, run, site_with};

/// Rewrites the site's connectURI line (`f` gets the current URI) and adds `extra` lines.
fn set_conf(site: &fx::Site, f: impl Fn(&str) -> String, extra: &str) {
    let conf = std::fs::read_to_string(&site.conf).unwrap();
    let key = "druid.metadata.storage.connector.connectURI=";
    let mut out = String::new();
    for line in conf.lines() {
        if let Some(uri) = line.strip_prefix(key) {
            out.push_str(&format!("{key}{}\n", f(uri)));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(extra);
    std::fs::write(&site.conf, out).unwrap();
}

fn originals(site: &fx::Site) -> std::collections::BTreeMap<String, String> {
    site.segs
        .iter()
        .map(|s| (s.id.clone(), s.payload.clone()))
        .collect()
}

#[test]
fn mysql_connect_uri_settings_are_honoured_or_refused() {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    let site = site_with(db::fresh_mysql_db("druid_jdbc"), true, Vec::new());
    let target = "target=file:///tmp/ferry-druid-jdbc-never-written";
    let refused: &[(&str, &str, &[&str])] = &[
        (
            "?sslMode=PREFERRED",
            "",
            &["?sslMode=PREFERRED", "cannot fall back to plain text"],
        ),
        (
            "?useSSL=true&trustCertificateKeyStoreUrl=file:/etc/ks.jks",
            "",
            &["trustCertificateKeyStoreUrl", "Java keystores"],
        ),
        (
            "?cachePrepStmts=true",
            "",
            &["?cachePrepStmts=true", "will not ignore it"],
        ),
        (
            "",
            "druid.metadata.mysql.ssl.enabledTLSProtocols=[\"TLSv1.2\"]\n",
            &[
                "druid.metadata.mysql.ssl.enabledTLSProtocols",
                "protocol lists",
            ],
        ),
    ];
    for (query, extra, want) in refused {
        set_conf(
            &site,
            |u| format!("{}{query}", u.split('?').next().unwrap()),
            extra,
        );
        let out = run(&site, &["-p", target, "--dry-run", "--state", "r"], None);
        out.code(2);
        for w in *want {
            out.stderr_has(w);
        }
        // Reset the extra lines for the next case.
        let conf = std::fs::read_to_string(&site.conf)
            .unwrap()
            .replace(extra, "");
        std::fs::write(&site.conf, conf).unwrap();
    }
    // Several servers: a clear refusal naming them.
    set_conf(&site, |u| u.replacen("//", "//db-a:3306,", 1), "");
    run(&site, &["-p", target, "--dry-run", "--state", "r"], None)
        .code(2)
        .stderr_has("names several hosts (db-a:3306,");
    set_conf(
        &site,
        |u| {
            u.replace(",", "").replace("db-a:3306", "").replacen(
                "jdbc:mysql:",
                "jdbc:mysql:replication:",
                1,
            )
        },
        "",
    );
    run(&site, &["-p", target, "--dry-run", "--state", "r"], None)
        .code(2)
        .stderr_has("replication, load-balanced and SRV URLs name several servers");
    // TLS asked for (in the URL, or by druid.metadata.mysql.ssl.useSSL): no plain-text fallback.
    for (query, extra) in [
        ("?useSSL=true", ""),
        ("", "druid.metadata.mysql.ssl.useSSL=true\n"),
    ] {
        set_conf(
            &site,
            |u| {
                format!(
                    "{}{query}",
                    u.replacen("jdbc:mysql:replication:", "jdbc:mysql:", 1)
                        .split('?')
                        .next()
                        .unwrap()
                )
            },
            extra,
        );
        // Against a server with TLS (tests/setup/mariadb.sh), a CA that did not sign its
        // certificate must be refused: proof that the TLS setting reached the connection.
        // Without that setup (mysql_tls_or_skip: a failure under CI=true) only the weaker check
        // below runs.
        let other_ca = db::mysql_tls_or_skip()
            .map(|t| t.other_ca)
            .unwrap_or_default();
        let ca = format!("metadata_ca={other_ca}");
        let mut args = vec!["-p", target, "--dry-run", "--state", "r"];
        if !other_ca.is_empty() {
            args.extend(["-p", ca.as_str()]);
        }
        let out = run(&site, &args, None);
        assert_ne!(out.code, 0, "connected without TLS:\n{}", out.stderr);
        assert!(
            out.stderr.to_lowercase().contains("tls") || out.stderr.to_lowercase().contains("ssl"),
            "{}",
            out.stderr
        );
        let conf = std::fs::read_to_string(&site.conf)
            .unwrap()
            .replace(extra, "");
        std::fs::write(&site.conf, conf).unwrap();
    }
    assert_eq!(fx::payloads(&site.url), originals(&site));
    // useSSL=false is honoured (plain text, as asked); a character set property is named, not applied.
    set_conf(
        &site,
        |u| {
            format!(
                "{}?useSSL=false&characterEncoding=UTF-8",
                u.split('?').next().unwrap()
            )
        },
        "",
    );
    let dir = site.ws.join("new-deep");
    run(
        &site,
        &["-p", &format!("target=file://{}", dir.display())],
        None,
    )
    .code(0)
    .stderr_has("connection properties without effect on ferry: characterEncoding")
    .stderr_has("rewrote 7 load spec(s)");
    db::drop_mysql_db(&site.url);
}

/// pgJDBC's currentSchema decides where Druid's unqualified table names resolve: ferry reads and
/// rewrites druid_segments in that schema. TLS settings in the URL are never dropped.
#[test]
fn postgres_current_schema_is_honoured_and_sslmode_require_is_not_dropped() {
    if db::postgres_url_or_skip().is_none() {
        return;
    }
    let site = site_with(db::fresh_postgres_db("druid_jdbc"), false, Vec::new());
    db::psql_exec(
        &site.url,
        "CREATE SCHEMA druidmeta; ALTER TABLE druid_segments SET SCHEMA druidmeta;",
    );
    let in_schema = format!("{}?options=-csearch_path%3Ddruidmeta", site.url);
    let dir = site.ws.join("new-deep");
    let target = format!("target=file://{}", dir.display());
    // Without the TLS setup (postgres_tls_or_skip: a failure under CI=true) only the weaker
    // check runs.
    match db::postgres_tls_or_skip().map(|t| t.other_ca) {
        // The server speaks TLS (tests/setup/postgres.sh): sslmode and sslrootcert must reach
        // the connection, so a CA that did not sign the server's certificate is refused.
        Some(other_ca) => {
            set_conf(
                &site,
                |u| format!("{u}?sslmode=verify-full&sslrootcert={other_ca}"),
                "",
            );
            let out = run(&site, &["-p", &target], None);
            assert_ne!(
                out.code, 0,
                "connected despite the wrong CA:\n{}",
                out.stderr
            );
            assert!(
                out.stderr.to_lowercase().contains("certificate"),
                "{}",
                out.stderr
            );
        }
        // A server without TLS: sslmode=require must fail rather than fall back to plain text.
        _ => {
            set_conf(&site, |u| format!("{u}?sslmode=require"), "");
            let out = run(&site, &["-p", &target], None);
            assert_ne!(out.code, 0, "connected without TLS:\n{}", out.stderr);
        }
    }
    assert_eq!(fx::payloads(&in_schema), originals(&site));

    set_conf(
        &site,
        |u| {
            format!(
                "{}?currentSchema=druidmeta&ApplicationName=druid",
                u.split('?').next().unwrap()
            )
        },
        "",
    );
    run(&site, &["-p", &target], None)
        .code(0)
        .stderr_has("rewrote 7 load spec(s)");
    let got = fx::payloads(&in_schema);
    let rewritten = got
        .values()
        .filter(|p| p.contains(&format!("\"path\":\"{}/", dir.display())))
        .count();
    assert_eq!(rewritten, 7, "{got:?}");
    db::drop_postgres_db(&site.url);
}

/// Rewrites the site's connection for the TLS-only user of tests/setup (ferry_tls, which the
/// server lets in over TLS only): connectURI host `localhost` (the name on the server's
/// certificate), that user, and `extra` properties.
fn tls_user_conf(site: &fx::Site, tls_url: &str, extra: &str) {
    let u = url::Url::parse(tls_url).unwrap();
    let conf = std::fs::read_to_string(&site.conf)
        .unwrap()
        .replace("//127.0.0.1:", "//localhost:")
        .replace(
            "druid.metadata.storage.connector.user=ferry\n",
            &format!("druid.metadata.storage.connector.user={}\n", u.username()),
        );
    let mut out: String = conf
        .lines()
        .filter(|l| {
            !l.starts_with("druid.metadata.mysql.ssl.")
                && !l.starts_with("druid.metadata.postgres.ssl.")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(extra);
    std::fs::write(&site.conf, out).unwrap();
}

fn run_as(site: &fx::Site, tls_url: &str, args: &[&str]) -> common::Output {
    let pw = url::Url::parse(tls_url)
        .unwrap()
        .password()
        .unwrap()
        .to_string();
    fx::ferry_cmd(site, args)
        .env("DRUID_METADATA_PASSWORD", &pw)
        .run()
}

/// MySQLConnectorSslConfig's druid.metadata.mysql.ssl.useSSL=true with the CA that signed the
/// server's certificate (Druid takes it from a trust keystore, ferry as -p metadata_ca=PEM):
/// the TLS-only user connects and the migration runs; a CA that did not sign it is refused.
#[test]
fn mysql_ssl_use_ssl_with_the_right_ca_connects_over_tls() {
    let Some(tls) = db::mysql_tls_or_skip() else {
        return;
    };
    let site = site_with(db::fresh_mysql_db("druid_tls"), true, Vec::new());
    let user = url::Url::parse(&tls.tls_url)
        .unwrap()
        .username()
        .to_string();
    let dbname = db::url_database(&site.url).unwrap();
    db::mysql_exec(
        &site.url,
        &format!(
            "GRANT ALL ON `{dbname}`.* TO '{user}'@'%'; GRANT ALL ON `{dbname}`.* TO '{user}'@'localhost';"
        ),
    );
    let dir = site.ws.join("new-deep");
    let target = format!("target=file://{}", dir.display());
    tls_user_conf(
        &site,
        &tls.tls_url,
        "druid.metadata.mysql.ssl.useSSL=true\n",
    );
    let wrong = format!("metadata_ca={}", tls.other_ca);
    let out = run_as(&site, &tls.tls_url, &["-p", &target, "-p", &wrong]);
    assert_ne!(out.code, 0, "connected with the wrong CA:\n{}", out.stderr);
    assert_eq!(fx::payloads(&site.url), originals(&site));
    // Without any TLS setting ferry connects in plain text, and the server refuses the TLS-only
    // user: what succeeds below is TLS.
    tls_user_conf(&site, &tls.tls_url, "");
    let right = format!("metadata_ca={}", tls.ca);
    let out = run_as(&site, &tls.tls_url, &["-p", &target]);
    assert_ne!(
        out.code, 0,
        "the TLS-only user got in without TLS:\n{}",
        out.stderr
    );
    tls_user_conf(
        &site,
        &tls.tls_url,
        "druid.metadata.mysql.ssl.useSSL=true\n",
    );
    run_as(&site, &tls.tls_url, &["-p", &target, "-p", &right])
        .code(0)
        .stderr_has("rewrote 7 load spec(s)");
    db::drop_mysql_db(&site.url);
}

/// PostgreSQLConnectorConfig's druid.metadata.postgres.ssl.{useSSL,sslMode,sslRootCert} reach the
/// connection: a root certificate that did not sign the server's is refused, the right one lets
/// the TLS-only user in. A multi-host URL (pgJDBC fails over between hosts) is refused.
#[test]
fn postgres_ssl_properties_are_honoured_and_multi_host_urls_refused() {
    let Some(tls) = db::postgres_tls_or_skip() else {
        return;
    };
    let site = site_with(db::fresh_postgres_db("druid_tls"), true, Vec::new());
    let user = url::Url::parse(&tls.tls_url)
        .unwrap()
        .username()
        .to_string();
    db::psql_exec(
        &site.url,
        &format!(
            "GRANT ALL ON SCHEMA public TO {user}; GRANT ALL ON ALL TABLES IN SCHEMA public TO {user};"
        ),
    );
    let dir = site.ws.join("new-deep");
    let target = format!("target=file://{}", dir.display());
    let props = |ca: &str| {
        format!(
            "druid.metadata.postgres.ssl.useSSL=true\ndruid.metadata.postgres.ssl.sslMode=verify-full\n\
             druid.metadata.postgres.ssl.sslRootCert={ca}\n"
        )
    };
    tls_user_conf(&site, &tls.tls_url, &props(&tls.other_ca));
    let out = run_as(&site, &tls.tls_url, &["-p", &target]);
    assert_ne!(out.code, 0, "connected with the wrong CA:\n{}", out.stderr);
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );
    assert_eq!(fx::payloads(&site.url), originals(&site));
    tls_user_conf(&site, &tls.tls_url, &props(&tls.ca));
    run_as(&site, &tls.tls_url, &["-p", &target])
        .code(0)
        .stderr_has("rewrote 7 load spec(s)");

    set_conf(
        &site,
        |_| "jdbc:postgresql://h1:5432,h2:5432/druid".to_string(),
        "",
    );
    run_as(
        &site,
        &tls.tls_url,
        &["-p", &target, "--dry-run", "--state", "m"],
    )
    .code(2)
    .stderr_has("names several hosts (h1:5432,h2:5432)");
    db::drop_postgres_db(&site.url);
}
