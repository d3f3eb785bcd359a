//! The integration tests: one test crate (`cargo test --test it`), so `tests/common` and the
//! doubles compile once and the suite links one binary. Each `tests/<name>.rs` is a module; run
//! one with `cargo test --test it <name>::` (a test: `<name>::<test>`).

mod common;

/// The StarRocks FE/BE double (MySQL-protocol front and Stream Load over a real MariaDB).
mod starrocks {
    #[path = "double.rs"]
    pub mod double;
    #[path = "site.rs"]
    pub mod site;
}

/// The Pegasus shell, admin and HTTP doubles and the per-procedure sites built on them.
mod pegasus {
    #[path = "cold_backup.rs"]
    pub mod cold_backup;
    #[path = "copy_data.rs"]
    pub mod copy_data;
    #[path = "double.rs"]
    pub mod double;
    #[path = "online_migration.rs"]
    pub mod online_migration;
}

/// The astra-sideloader harness (DevOps API, nodetool and S3/STS doubles).
#[path = "procedure_astra/harness.rs"]
mod astra_harness;
mod seafile_support;

mod cli;
mod copy_engine;
mod db_selftest;
mod disk_full;
mod druid_coordinator_faults;
mod exec_stream;
mod fixtures_selftest;
mod fuzz_inputs;
mod http;
mod http_stream;
mod kill_anywhere;
mod kill_anywhere_apis;
mod kill_anywhere_more;
mod log_json;
mod lua_api;
mod lua_types;
mod metrics;
mod procedure_astra;
mod procedure_astra_gcp;
mod procedure_astra_origin;
mod procedure_druid;
mod procedure_druid_csv;
mod procedure_druid_gcs;
mod procedure_druid_jdbc;
mod procedure_druid_upstream;
mod procedure_pegasus_cold_backup;
mod procedure_pegasus_copy_data;
mod procedure_pegasus_online_migration;
mod procedure_pegasus_refusals;
mod procedure_seafile;
mod procedure_seafile_backends;
mod procedure_seafile_conf;
mod procedure_starrocks;
mod procedure_starrocks_ddl;
mod procedure_starrocks_ops;
mod procedure_starrocks_parallel;
mod procedure_starrocks_partitions;
mod procedure_starrocks_tls;
mod repl_pty;
mod runbook;
mod scale_out;
mod sql;
mod sql_load_data;
mod sql_network_faults;
mod sql_pg_copy;
mod sql_timeouts;
mod sql_tls;
mod state_lease;
mod status_html;
mod store;
mod store_azure;
mod store_gcs_faults;
mod store_multipart_abort;
mod store_s3_network_faults;
mod store_s3_renew;
mod store_s3_tls;
mod store_sse;
mod stream_load_faults;
mod terminal;
mod tutorial;
