//! Fuzzing (issue 22, "Garbage in") of the hand-edited inputs read by the bundled Lua helpers,
//! in-process through ferry's Lua runtime: Druid's connectURI (druid.jdbc_options, sql_url) and
//! common.runtime.properties, Seafile's seafile.conf (seafile.read_conf and the backend
//! mapping), StarRocks' sync.properties. A refusal must be ferry's own error (usage,
//! invalid_input, not_found) naming the file or the setting, never a Lua runtime error.
//!
//! The pure-Rust parsers are fuzzed beside their code (`cargo test --lib fuzz_`); the near-miss
//! mutations are shared with them through `src/codec/mutate.rs`. More cases: tests/fuzz.sh --long.

#[allow(dead_code)]
#[path = "../src/codec/mutate.rs"]
mod mutate;

use std::path::Path;
use std::rc::Rc;

use ferry::runtime::context::{Mode, RunContext, RunOptions, ScriptInfo};
use ferry::runtime::error::{ErrorKind, FerryError};
use ferry::runtime::params::RawParams;
use mlua::{Function, IntoLuaMulti, Lua, MultiValue, Table};
use mutate::{config, near_miss, value_text};
use proptest::prelude::*;

/// One Lua state per test thread with the helpers loaded, and a folder for the files.
struct Harness {
    rt: tokio::runtime::Runtime,
    local: tokio::task::LocalSet,
    lua: Lua,
    api: Table,
    dir: tempfile::TempDir,
}

const HARNESS: &str = r#"
local druid = require "ferry.druid"
local seafile = require "ferry.seafile"
local starrocks = require "ferry.starrocks"
return {
  jdbc = function(uri, ssl, user, password)
    druid.sql_url(uri, user, password)
    return druid.jdbc_options(uri, ssl, nil)
  end,
  druid_conf = function(path)
    local c = druid.read_conf(path)
    druid.sql_url(c.connect_uri, c.user, c.password)
    if c.connect_uri then
      druid.jdbc_options(c.connect_uri, c.metadata_type == "postgresql" and c.postgres_ssl or c.mysql_ssl, nil)
    end
    return c
  end,
  seafile = function(path, role)
    local conf, _, p = seafile.read_conf(path)
    seafile.refuse_storage_classes(conf, p)
    for _, t in ipairs(seafile.TYPES) do
      seafile.backend(conf, t, "/srv/seafile-data", role, p, {sign_region = "us-east-1"})
    end
    return true
  end,
  starrocks = function(dir)
    return starrocks.read_conf(dir, {})
  end,
}
"#;

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = ScriptInfo {
            name: "fuzz".into(),
            display: "fuzz".into(),
            dir: None,
            source: String::new(),
            checksum: String::new(),
            bundled: false,
        };
        let ctx = Rc::new(RunContext::new(
            RunOptions {
                mode: Mode::Repl,
                dry_run: false,
                yes: true,
                state_dir: dir.path().join("state"),
                from_step: None,
                fresh: false,
                raw: RawParams::default(),
                resume_base: "ferry run fuzz".into(),
                quiet: true,
                shard: None,
            },
            script,
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let local = tokio::task::LocalSet::new();
        let lua = ferry::runtime::new_lua(ctx, ferry::modules::modules()).expect("lua state");
        let chunk = ferry::runtime::load_chunk(&lua, HARNESS, "fuzz_harness").expect("harness");
        let out = local
            .block_on(
                &rt,
                ferry::runtime::call_protected(&lua, chunk, MultiValue::new()),
            )
            .expect("harness loads");
        let api = match out.front() {
            Some(mlua::Value::Table(t)) => t.clone(),
            other => panic!("harness returned {other:?}"),
        };
        Harness {
            rt,
            local,
            lua,
            api,
            dir,
        }
    }

    fn call(&self, name: &str, args: impl IntoLuaMulti) -> Result<(), FerryError> {
        let f: Function = self.api.get(name).expect("harness function");
        let args = args.into_lua_multi(&self.lua).expect("arguments");
        self.local
            .block_on(&self.rt, ferry::runtime::call_protected(&self.lua, f, args))
            .map(|_| ())
    }

    fn write(&self, rel: &str, text: &str) -> String {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("folder");
        }
        std::fs::write(&path, text).expect("write");
        path.to_string_lossy().into_owned()
    }
}

thread_local! {
    static HARNESS_STATE: Harness = Harness::new();
}

/// A refusal is ferry's own (not a Lua runtime error or an internal one) and names `place`.
fn check_refusal(e: &FerryError, places: &[&str]) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(
            e.kind,
            ErrorKind::Usage | ErrorKind::InvalidInput | ErrorKind::NotFound
        ),
        "not a clear refusal: {}",
        e.one_line()
    );
    prop_assert!(
        places.iter().any(|p| e.message.contains(p)),
        "refusal names none of {:?}: {}",
        places,
        e.one_line()
    );
    Ok(())
}

// --- Druid: connectURI and common.runtime.properties ---

const JDBC_TOKENS: &[&str] = &[
    "?",
    "&",
    ";",
    "=",
    "jdbc:",
    "mysql:",
    "loadbalance:",
    "//",
    ",",
    "(",
    ")",
    "useSSL=",
    "sslMode=",
    "ssl=",
    "sslmode=",
    "true",
    "FALSE",
    "%",
    "%20",
    "+srv",
    "[::1]",
    ":3306",
    "/",
];

fn jdbc_uri() -> impl Strategy<Value = String> {
    let mysql_params = prop::collection::vec(
        (
            prop::sample::select(
                &[
                    "useSSL",
                    "requireSSL",
                    "verifyServerCertificate",
                    "sslMode",
                    "serverSslCert",
                    "characterEncoding",
                    "connectTimeout",
                    "trustCertificateKeyStoreUrl",
                    "enabledTLSProtocols",
                ][..],
            ),
            prop::sample::select(
                &[
                    "true",
                    "false",
                    "REQUIRED",
                    "VERIFY_CA",
                    "DISABLED",
                    "PREFERRED",
                    "/ca.pem",
                    "UTF-8",
                    "",
                ][..],
            ),
        ),
        0..4,
    );
    let pg_params = prop::collection::vec(
        (
            prop::sample::select(
                &[
                    "ssl",
                    "sslmode",
                    "sslrootcert",
                    "currentSchema",
                    "ApplicationName",
                    "sslcert",
                ][..],
            ),
            prop::sample::select(
                &[
                    "true",
                    "false",
                    "require",
                    "verify-full",
                    "allow",
                    "/ca.pem",
                    "druid,public",
                    "",
                ][..],
            ),
        ),
        0..4,
    );
    prop_oneof![
        ("[a-z0-9.-]{1,12}", 1u16..65535, "[a-z_]{0,8}", mysql_params).prop_map(|(h, p, db, q)| {
            let q: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("jdbc:mysql://{h}:{p}/{db}?{}", q.join("&"))
        }),
        ("[a-z0-9.-]{1,12}", 1u16..65535, "[a-z_]{0,8}", pg_params).prop_map(|(h, p, db, q)| {
            let q: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("jdbc:postgresql://{h}:{p}/{db}?{}", q.join("&"))
        }),
        Just("jdbc:derby://localhost:1527/var/druid/metadata.db;create=true".to_string()),
    ]
}

const DRUID_KEYS: &[&str] = &[
    "druid.metadata.storage.type",
    "druid.metadata.storage.connector.connectURI",
    "druid.metadata.storage.connector.user",
    "druid.metadata.storage.connector.password",
    "druid.metadata.mysql.ssl.useSSL",
    "druid.metadata.mysql.ssl.verifyServerCertificate",
    "druid.metadata.postgres.ssl.useSSL",
    "druid.metadata.postgres.ssl.sslMode",
    "druid.storage.type",
    "druid.storage.storageDirectory",
];

fn druid_properties() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        2 => value_text(),
        2 => jdbc_uri(),
        2 => prop::sample::select(
            &[
                "mysql",
                "postgresql",
                "derby",
                "true",
                "{\"type\":\"default\",\"password\":\"pw\"}",
                "{\"type\":\"default\",\"password\":{}}",
                "{\"type\":\"default\",\"password\":[1]}",
                "{\"type\":\"environment\",\"variable\":\"HOME\"}",
                "{\"type\":\"environment\",\"variable\":{}}",
                "{\"type\":\"environment\"}",
                "{\"type\":\"default\",\"password\":null}",
                "{\"type\":[]}",
                "{\"type\":\"mapString\"}",
                "{ not json",
            ][..],
        )
        .prop_map(str::to_string),
    ];
    prop::collection::vec(
        (
            prop::sample::select(DRUID_KEYS),
            prop::sample::select(&["=", " = ", ":", " "][..]),
            value,
        ),
        0..8,
    )
    .prop_map(|lines| {
        lines
            .into_iter()
            .map(|(k, sep, v)| format!("{k}{sep}{v}\n"))
            .collect()
    })
}

// --- Seafile: seafile.conf ---

fn seafile_conf() -> impl Strategy<Value = String> {
    let backend = (
        prop::sample::select(&["fs", "s3", "oss", "ceph", "swift", "S3", ""][..]),
        prop::collection::vec(
            (
                prop::sample::select(
                    &[
                        "bucket",
                        "key_id",
                        "key",
                        "host",
                        "aws_region",
                        "use_https",
                        "path_style_request",
                        "use_v4_signature",
                        "dir",
                        "endpoint",
                        "region",
                        "sse_c_key",
                        "Bucket",
                    ][..],
                ),
                prop_oneof![
                    value_text(),
                    prop::sample::select(
                        &[
                            "true",
                            "no",
                            "maybe",
                            "s3.example.com:9000",
                            "h:p",
                            ":9000",
                            "oss-cn-hangzhou.aliyuncs.com",
                            "%(bucket)s",
                            "100%",
                            "%%"
                        ][..]
                    )
                    .prop_map(str::to_string),
                ],
            ),
            0..6,
        ),
    );
    let section = (
        prop::sample::select(
            &[
                "commit_object_backend",
                "fs_object_backend",
                "block_backend",
                "DEFAULT",
                "storage",
                "store_crypt",
                "fileserver",
            ][..],
        ),
        backend,
    )
        .prop_map(|(name, (backend, entries))| {
            let mut s = format!("[{name}]\nname = {backend}\n");
            for (k, v) in entries {
                s.push_str(&format!("{k} = {v}\n"));
            }
            s
        });
    prop::collection::vec(section, 0..5).prop_map(|s| s.concat())
}

// --- StarRocks: sync.properties ---

fn sync_properties() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(
                &[
                    "sync_mode",
                    "src_fe_host",
                    "src_fe_query_port",
                    "src_fe_http_port",
                    "src_root_user",
                    "src_root_password",
                    "target_fe_query_port",
                    "include_data_list",
                    "exclude_data_list",
                    "enable_table_property_sync",
                    "max_replication_data_size_per_job_in_gb",
                    "some_future_key",
                ][..],
            ),
            prop::sample::select(&["=", " = ", ":", " "][..]),
            prop_oneof![
                value_text(),
                prop::sample::select(
                    &[
                        "9030",
                        "0x10",
                        "1e3",
                        "-1",
                        "true",
                        "TRUE",
                        "yes",
                        "db1.t1,db2",
                        "99999999999999999999"
                    ][..]
                )
                .prop_map(str::to_string),
            ],
        ),
        0..10,
    )
    .prop_map(|lines| {
        lines
            .into_iter()
            .map(|(k, sep, v)| format!("{k}{sep}{v}\n"))
            .collect()
    })
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn fuzz_druid_jdbc_options_and_sql_url(
        uri in near_miss(jdbc_uri(), JDBC_TOKENS),
        ssl in prop::option::of(prop::collection::btree_map(
            prop::sample::select(&["useSSL", "sslMode", "verifyServerCertificate", "trustStore", "sslmode"][..]),
            prop::sample::select(&["true", "false", "REQUIRED", "x", ""][..]),
            0..3,
        )),
        user in prop::option::of(value_text()),
        password in prop::option::of(value_text()),
    ) {
        HARNESS_STATE.with(|h| -> Result<(), TestCaseError> {
            let ssl = ssl.map(|m| h.lua.create_table_from(m).expect("table"));
            if let Err(e) = h.call("jdbc", (uri.clone(), ssl, user, password)) {
                check_refusal(&e, &["connectURI", "druid.metadata."])?;
            }
            Ok(())
        })?;
    }

    #[test]
    fn fuzz_druid_common_runtime_properties(
        text in near_miss(druid_properties(), JDBC_TOKENS),
    ) {
        HARNESS_STATE.with(|h| -> Result<(), TestCaseError> {
            let path = h.write("druid/common.runtime.properties", &text);
            if let Err(e) = h.call("druid_conf", path.clone()) {
                check_refusal(&e, &[&path, "connectURI", "druid.metadata."])?;
            }
            Ok(())
        })?;
    }

    #[test]
    fn fuzz_seafile_conf(
        text in near_miss(seafile_conf(), &["[block_backend]", "name = s3", "%(", "[]", "  "]),
        destination in any::<bool>(),
    ) {
        HARNESS_STATE.with(|h| -> Result<(), TestCaseError> {
            let path = h.write("seafile/seafile.conf", &text);
            let role = if destination { "destination" } else { "source" };
            if let Err(e) = h.call("seafile", (path.clone(), role)) {
                check_refusal(&e, &[&path])?;
            }
            Ok(())
        })?;
    }

    #[test]
    fn fuzz_starrocks_sync_properties(
        text in near_miss(sync_properties(), &["\\u12", "\\\n", "=,", ",,"]),
    ) {
        HARNESS_STATE.with(|h| -> Result<(), TestCaseError> {
            let path = h.write("starrocks/conf/sync.properties", &text);
            let dir = Path::new(&path).parent().and_then(Path::parent).expect("dir");
            if let Err(e) = h.call("starrocks", dir.to_string_lossy().into_owned()) {
                check_refusal(&e, &[&path])?;
            }
            Ok(())
        })?;
    }
}

/// Found by fuzz_druid_common_runtime_properties: a JSON password provider whose fields are not
/// strings stopped with a Lua error inside druid.lua ("bad argument #1 to 'getenv'", "attempt
/// to call a nil value (method 'gsub')") instead of naming the setting.
#[test]
fn regression_druid_password_provider_fields_must_be_strings() {
    HARNESS_STATE.with(|h| {
        for provider in [
            r#"{"type":"environment","variable":{}}"#,
            r#"{"type":"default","password":{}}"#,
            r#"{"type":[]}"#,
            r#"{"type":"environment"}"#,
        ] {
            let text = format!(
                "druid.metadata.storage.connector.connectURI=jdbc:mysql://h:1/d\n\
                 druid.metadata.storage.connector.user=u\n\
                 druid.metadata.storage.connector.password={provider}\n"
            );
            let path = h.write("regression/common.runtime.properties", &text);
            let e = h.call("druid_conf", path.clone()).expect_err(provider);
            assert_eq!(e.kind, ErrorKind::InvalidInput, "{}", e.one_line());
            assert!(
                e.message.contains(&path) && e.message.contains("password"),
                "{}",
                e.one_line()
            );
        }
        let path = h.write(
            "regression/common.runtime.properties",
            "druid.metadata.storage.connector.password={\"type\":\"default\",\"password\":null}\n",
        );
        h.call("druid_conf", path)
            .expect("a null password is no password");
    });
}
