//! Self-tests of the database test support (tests/common/db.rs and tests/setup/{mariadb,postgres}.sh):
//! the servers answer, the `ferry` test users can create databases, tables and rows through the
//! command-line clients, and wrong passwords are rejected. Each server test skips (printing
//! `SKIPPED: ...`) when its FERRY_TEST_*_URL variable is unset.

use crate::common;

use common::db;

fn rows(v: &[&[&str]]) -> Vec<Vec<String>> {
    v.iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

// --- URL helpers (no server needed) ---------------------------------------------------------

#[test]
fn url_helpers() {
    let u = "mysql://ferry:ferry@127.0.0.1:13306/";
    assert_eq!(db::url_database(u), None);
    assert_eq!(
        db::with_database(u, "ft_x"),
        "mysql://ferry:ferry@127.0.0.1:13306/ft_x"
    );
    assert_eq!(db::url_database("mysql://h/ft_x"), Some("ft_x".into()));
    assert_eq!(
        db::with_database("postgres://a:b@h:1/postgres?sslmode=disable", "d"),
        "postgres://a:b@h:1/d?sslmode=disable"
    );
    assert_eq!(
        db::with_password("postgres://a:b@h:1/postgres?x=1", "p@ss/w:rd"),
        "postgres://a:p%40ss%2Fw%3Ard@h:1/postgres?x=1"
    );
    assert_eq!(db::with_password("mysql://a@h/", "x"), "mysql://a:x@h/");
    assert_eq!(
        db::tsv_rows("1\ta\tNULL\n2\tb\tc\n"),
        rows(&[&["1", "a", "NULL"], &["2", "b", "c"]])
    );
}

#[test]
fn sql_errors_name_the_url_without_its_password() {
    // Nothing listens on port 1: both clients fail to connect.
    let e = db::try_psql_exec("postgres://u:secret@127.0.0.1:1/postgres", "SELECT 1")
        .expect_err("no server on port 1");
    assert!(e.contains("postgres://u:***@127.0.0.1:1/postgres"), "{e}");
    assert!(!e.contains("secret"), "{e}");
}

// --- MariaDB / MySQL ------------------------------------------------------------------------

#[test]
fn mysql_create_insert_select() {
    let Some(_) = db::mysql_url_or_skip() else {
        return;
    };
    let url = db::fresh_mysql_db("selftest_rows");
    assert!(
        db::url_database(&url)
            .unwrap()
            .starts_with("ft_selftest_rows_"),
        "{url}"
    );
    db::mysql_exec(
        &url,
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, note TEXT NULL);
         INSERT INTO items VALUES (1, 'alpha', NULL), (2, 'bêta ☃', 'x y');",
    );
    let out = db::mysql_exec(&url, "SELECT id, name, note FROM items ORDER BY id");
    assert_eq!(
        db::tsv_rows(&out),
        rows(&[&["1", "alpha", "NULL"], &["2", "bêta ☃", "x y"]])
    );
    assert_eq!(
        db::mysql_exec(&url, "SELECT COUNT(*) FROM items").trim(),
        "2"
    );
    db::drop_mysql_db(&url);
    let e = db::try_mysql_exec(&url, "SELECT 1").expect_err("database was dropped");
    assert!(e.contains("Unknown database"), "{e}");
}

#[test]
fn mysql_fresh_dbs_are_separate_and_empty() {
    let Some(_) = db::mysql_url_or_skip() else {
        return;
    };
    let a = db::fresh_mysql_db("selftest same");
    let b = db::fresh_mysql_db("selftest same");
    assert_ne!(a, b);
    db::mysql_exec(&a, "CREATE TABLE t (x INT)");
    assert_eq!(db::mysql_exec(&b, "SHOW TABLES").trim(), "");
    assert_eq!(db::mysql_exec(&a, "SHOW TABLES").trim(), "t");
}

#[test]
fn mysql_sql_error_is_reported() {
    let Some(_) = db::mysql_url_or_skip() else {
        return;
    };
    let url = db::fresh_mysql_db("selftest_err");
    let e = db::try_mysql_exec(&url, "SELECT * FROM no_such_table").expect_err("must fail");
    assert!(e.contains("doesn't exist"), "{e}");
    let panic = std::panic::catch_unwind(|| db::mysql_exec(&url, "SELEC 1")).expect_err("panics");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("SQL syntax"), "{msg}");
}

#[test]
fn mysql_wrong_password_is_rejected() {
    let Some(server) = db::mysql_url_or_skip() else {
        return;
    };
    let e = db::try_mysql_exec(&db::with_password(&server, "not-the-password"), "SELECT 1")
        .expect_err("a wrong password must be rejected");
    assert!(e.contains("Access denied"), "{e}");
    assert_eq!(db::mysql_exec(&server, "SELECT 1").trim(), "1");
}

// --- PostgreSQL -----------------------------------------------------------------------------

#[test]
fn postgres_create_insert_select() {
    let Some(_) = db::postgres_url_or_skip() else {
        return;
    };
    let url = db::fresh_postgres_db("selftest_rows");
    assert!(
        db::url_database(&url)
            .unwrap()
            .starts_with("ft_selftest_rows_"),
        "{url}"
    );
    db::psql_exec(
        &url,
        "CREATE TABLE items (id INT PRIMARY KEY, name TEXT NOT NULL, note TEXT NULL);
         INSERT INTO items VALUES (1, 'alpha', NULL), (2, 'bêta ☃', 'x y');",
    );
    let out = db::psql_exec(&url, "SELECT id, name, note FROM items ORDER BY id");
    assert_eq!(
        db::tsv_rows(&out),
        rows(&[&["1", "alpha", "NULL"], &["2", "bêta ☃", "x y"]])
    );
    assert_eq!(
        db::psql_exec(&url, "SELECT count(*) FROM items").trim(),
        "2"
    );
    db::drop_postgres_db(&url);
    let e = db::try_psql_exec(&url, "SELECT 1").expect_err("database was dropped");
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn postgres_fresh_dbs_are_separate_and_empty() {
    let Some(_) = db::postgres_url_or_skip() else {
        return;
    };
    let a = db::fresh_postgres_db("selftest same");
    let b = db::fresh_postgres_db("selftest same");
    assert_ne!(a, b);
    db::psql_exec(&a, "CREATE TABLE t (x INT)");
    let tables = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'";
    assert_eq!(db::psql_exec(&b, tables).trim(), "");
    assert_eq!(db::psql_exec(&a, tables).trim(), "t");
}

#[test]
fn postgres_sql_error_is_reported() {
    let Some(_) = db::postgres_url_or_skip() else {
        return;
    };
    let url = db::fresh_postgres_db("selftest_err");
    let e = db::try_psql_exec(&url, "SELECT * FROM no_such_table").expect_err("must fail");
    assert!(e.contains("does not exist"), "{e}");
    // ON_ERROR_STOP: nothing after the failing statement runs.
    let e = db::try_psql_exec(
        &url,
        "CREATE TABLE a (x INT); SELEC 1; CREATE TABLE b (x INT);",
    )
    .expect_err("must fail");
    assert!(e.contains("syntax error"), "{e}");
    let tables = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1";
    assert_eq!(db::psql_exec(&url, tables).trim(), "a");
}

#[test]
fn postgres_wrong_password_is_rejected() {
    let Some(server) = db::postgres_url_or_skip() else {
        return;
    };
    let e = db::try_psql_exec(&db::with_password(&server, "not-the-password"), "SELECT 1")
        .expect_err("a wrong password must be rejected");
    assert!(e.contains("password authentication failed"), "{e}");
    assert_eq!(db::psql_exec(&server, "SELECT 1").trim(), "1");
}

#[test]
fn postgres_user_can_create_databases() {
    let Some(server) = db::postgres_url_or_skip() else {
        return;
    };
    let out = db::psql_exec(
        &server,
        "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user",
    );
    assert_eq!(out.trim(), "t");
}

/// Run only by `or_skip_fails_under_ci_and_skips_otherwise`, in a child with the URLs unset.
#[test]
#[ignore = "a probe run by or_skip_fails_under_ci_and_skips_otherwise"]
fn or_skip_probe() {
    assert!(db::mysql_url_or_skip().is_none());
    assert!(db::postgres_url_or_skip().is_none());
}

/// `mysql_url_or_skip`/`postgres_url_or_skip` skip when the server URL is unset, but under CI=true
/// (where tests/run.sh sets the servers up) a missing URL fails the test instead of passing it.
#[test]
fn or_skip_fails_under_ci_and_skips_otherwise() {
    let probe = |ci: Option<&str>| {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap());
        // The probe's path inside the one test crate (`db_selftest::or_skip_probe`).
        let probe = module_path!()
            .split_once("::")
            .map_or("or_skip_probe".to_string(), |(_, m)| {
                format!("{m}::or_skip_probe")
            });
        c.args(["--exact", probe.as_str(), "--ignored", "--nocapture"])
            .env_remove(db::MYSQL_URL_VAR)
            .env_remove(db::POSTGRES_URL_VAR)
            .env_remove("CI");
        if let Some(v) = ci {
            c.env("CI", v);
        }
        c.output().unwrap()
    };
    let out = probe(Some("true"));
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "passed under CI=true:\n{err}");
    assert!(
        err.contains("CI=true and FERRY_TEST_MYSQL_URL is not set"),
        "{err}"
    );
    for ci in [None, Some("false")] {
        let out = probe(ci);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "CI={ci:?}:\n{err}");
        assert!(err.contains("SKIPPED: "), "{err}");
        assert!(err.contains("FERRY_TEST_POSTGRES_URL is not set"), "{err}");
    }
}
