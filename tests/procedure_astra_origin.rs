//! astra-sideloader: what ferry reads on the origin as Cassandra writes it: schema.cql in one data
//! directory only (views, dropped and re-added columns, `WITH ID`), encryption as a table option,
//! `nodetool listsnapshots` of Cassandra 3.11, 4.0, 4.1 and DSE; and the upload bucket's region
//! found without `AWS_REGION`. Doubles: `tests/common/astra.rs`, `tests/doubles/nodetool`.

use crate::astra_harness as harness;
use crate::common;

use common::astra;
use harness::*;

/// Materialized views: the view's schema.cql is in one data directory
/// (getDirectoryForNewSSTables, here the second one), its SSTables in both. Every directory of
/// the view is left out, and the run stops on it before anything is initialized.
#[test]
fn views_are_known_in_every_data_dir_whichever_holds_schema_cql() {
    for new_sstable_dir in ["0", "1"] {
        let site = site(0);
        astra::add_view(&site.root, "dse0");
        let (s3, api) = aws(|_| {});
        let out = command(&site, &api, Some(&s3), &[])
            .env("FERRY_NODETOOL_NEW_SSTABLE_DIR", new_sstable_dir)
            .run();
        out.code(1)
            .stderr_has("materialized views cannot be migrated")
            .stderr_has("catalog.journal_by_publisher");
        assert_eq!(api.initializes(), 0);

        let out = command(
            &site,
            &api,
            Some(&s3),
            &["-p", "allow_views=true", "--fresh"],
        )
        .env("FERRY_NODETOOL_NEW_SSTABLE_DIR", new_sstable_dir)
        .run();
        out.code(0).stderr_has("MigrationDone");
        let objects = s3_objects(&s3, &api, &api.migration_ids()[0]);
        let views: Vec<_> = objects
            .keys()
            .filter(|k| k.contains("journal_by_publisher"))
            .collect();
        assert!(
            views.is_empty(),
            "view files uploaded (schema.cql in data dir {new_sstable_dir}): {views:?}"
        );
        check_upload(&site, &objects);
    }
}

/// schema.cql as SchemaCQLHelper writes it (dropped columns in the CREATE, `WITH ID`, ALTER
/// TABLE DROP/ADD after it): ferry prints the table Astra needs, the ALTERs applied. A column
/// named `encrypted_note` is a column, not encryption.
#[test]
fn schema_is_printed_with_the_alters_applied_and_column_names_do_not_mean_encryption() {
    let site = site(0);
    let (s3, api) = aws(|_| {});
    let out = run(&site, &api, Some(&s3), &[]);
    out.code(0)
        .stderr_has(astra::SENSOR_TABLE)
        .stderr_has(
            "CREATE TABLE IF NOT EXISTS smart_home.rooms (\n    room_id uuid PRIMARY KEY,\n    \
             encrypted_note text,\n    name text\n) WITH comment = 'not encrypted';",
        )
        .stderr_has(
            "CREATE TABLE IF NOT EXISTS catalog.journal (\n    id int PRIMARY KEY,\n    \
             publisher frozen<address>\n);",
        )
        .stderr_lacks("battery")
        .stderr_lacks("USING TIMESTAMP")
        .stderr_lacks("ID = ")
        .stderr_lacks("encrypted tables")
        .stderr_has("MigrationDone");
    check_upload(&site, &s3_objects(&s3, &api, &api.migration_ids()[0]));
}

/// DSE Transparent Data Encryption is a compression class (`EncryptingLZ4Compressor`): that
/// table is refused, the others are not named.
#[test]
fn dse_tde_tables_are_refused_by_their_options() {
    let site = site(0);
    astra::encrypt(&site.root);
    let (s3, api) = aws(|_| {});
    let out = run(&site, &api, Some(&s3), &[]);
    out.code(1)
        .stderr_has("encrypted tables cannot be migrated by Sideloader: smart_home.rooms\n");
    assert_eq!(api.initializes(), 0);
}

/// The listsnapshots layout of every supported origin, with a 21-character snapshot name: in
/// 3.11 (and DSE 5.1) printf's 20-character column has no room left and the name runs into the
/// keyspace. The first run takes the snapshot (after "There are no snapshots"), lists it and
/// stops at the schema confirmation; the second finds it.
#[test]
fn listsnapshots_of_3_11_4_0_4_1_and_dse_with_a_long_snapshot_name() {
    listsnapshots_layouts(&["3.11", "dse5.1", "4.0", "4.1", "dse6.8"]);
}

/// The example on DataStax's DSE 5.1 `nodetool listsnapshots` page (and its Cassandra 2.1 to 3.0
/// pages): title-case header, a blank line, and a snapshot's further tables on continuation rows
/// with the snapshot name left blank (tests/doubles/nodetool LAYOUTS["dse-docs"]). Every table of
/// the snapshot is found on every node, the continuation rows included.
#[test]
fn listsnapshots_of_the_datastax_docs_layout_with_continuation_rows() {
    listsnapshots_layouts(&["dse-docs"]);
}

/// Every node's snapshot of every table is found in the listsnapshots `layouts` (nodetool
/// double's FERRY_NODETOOL_VERSION), with a 21-character snapshot name, and found again as
/// existing on a second run.
fn listsnapshots_layouts(layouts: &[&str]) {
    let snap = "sideloader-2025-01-15"; // 21 characters
    assert_eq!(snap.len(), 21);
    for &version in layouts {
        let site = site(0);
        let (s3, api) = aws(|_| {});
        let name = format!("snapshot={snap}");
        let go = |more: &[&str]| {
            let mut extra = vec!["-p", name.as_str()];
            extra.extend_from_slice(more);
            command_yes(&site, &api, Some(&s3), &extra, false)
                .env("FERRY_NODETOOL_VERSION", version)
                .run()
        };
        let out = go(&[]);
        out.code(3);
        for node in NODES {
            for table in [
                "smart_home.sensor_readings",
                "smart_home.rooms",
                "catalog.journal",
            ] {
                let line = format!("{node}: snapshot {snap} of {table}, ");
                let at = out.stderr.find(&line).unwrap_or_else(|| {
                    panic!("{version}: no {line:?} in\n{}", out.stderr);
                });
                // the size as stringifyFileSize prints it: a number and a unit (KB, MB in the
                // docs' older output)
                let rest = &out.stderr[at + line.len()..];
                let size = rest.split(" on disk").next().unwrap_or("");
                let mut words = size.split(' ');
                let number = words.next().unwrap_or("");
                let unit = words.next().unwrap_or("");
                assert!(
                    number.parse::<f64>().is_ok()
                        && ["bytes", "KiB", "MiB", "KB", "MB"].contains(&unit),
                    "{version}: size {size:?}"
                );
            }
        }
        let out = go(&["--fresh"]); // the step again, not the journal's "already done"
        out.code(3);
        for node in NODES {
            out.stderr_has(&format!(
                "{node}: snapshot {snap} exists already (3 table(s)), using it"
            ));
        }
        let log = std::fs::read_to_string(site.ws.join("nodetool.log")).unwrap();
        let taken = log.lines().filter(|l| l.contains(" snapshot ")).count();
        assert_eq!(taken, NODES.len(), "{version}: {log}");
        assert_eq!(api.initializes(), 0);
    }
}

/// The migration bucket is in the Astra database's region, which the status does not say: the
/// region comes from the bucket (HeadBucket's x-amz-bucket-region), with no AWS_REGION set. The
/// S3 server refuses requests signed for another region, as AWS does.
#[test]
fn aws_upload_signs_for_the_buckets_region_without_aws_region() {
    let site = site(0);
    let (s3, api) = aws(|_| {});
    s3.require_region("eu-west-1");
    let mut f = command(&site, &api, Some(&s3), &[]);
    f.cmd
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    let out = f.run();
    out.code(0)
        .stderr_has("eu-west-1")
        .stderr_has("MigrationDone");
    check_upload(&site, &s3_objects(&s3, &api, &api.migration_ids()[0]));
    let refused: Vec<_> = s3
        .request_log()
        .into_iter()
        .filter(|l| l.ends_with(" 400"))
        .collect();
    assert!(
        refused.is_empty(),
        "requests signed for the wrong region: {refused:?}"
    );
}
