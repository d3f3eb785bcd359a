//! Automatic (expression) partitioning in the StarRocks double: a table created with
//! `PARTITION BY date_trunc('<unit>', col)` or `PARTITION BY (col)` has no partitions until a
//! load brings rows that need one; the load creates it (FE `AnalyzerUtils.
//! getNonExistPartitionAddClause`, called for INSERT and Stream Load through
//! `OlapTableSink`/`createPartition`), named `p` + the formatted lower bound (day `pYYYYMMDD`,
//! month `pYYYYMM`, year `pYYYY`) or `p` + the list value (`getFormatPartitionValue`: letters and
//! digits kept, `-` as `_`). SHOW CREATE TABLE keeps printing no partition list
//! (`ExpressionRangePartitionInfoV2.toSql`, `ListPartitionInfo.toSql` for automatic lists).
//!
//! The MariaDB table behind has hidden partitions (`ddl::HIDDEN`) that hold rows until the double
//! has created their StarRocks partition right after the statement, and is re-partitioned then.

use super::ddl::{self, Partition, Scheme};
use super::{Fail, Key, Shared, cells, exec};

/// (name, lower, upper) of the partition a row value falls in, for a date_trunc unit.
fn range_sql(unit: &str, col: &str) -> String {
    let (name, lo, step) = match unit {
        "day" => ("%Y%m%d", "%Y-%m-%d", "DAY"),
        "year" => ("%Y", "%Y-01-01", "YEAR"),
        _ => ("%Y%m", "%Y-%m-01", "MONTH"),
    };
    format!(
        "SELECT DISTINCT CONCAT('p', DATE_FORMAT(`{col}`, '{name}')), DATE_FORMAT(`{col}`, '{lo}'), \
         DATE_FORMAT(CAST(DATE_FORMAT(`{col}`, '{lo}') AS DATE) + INTERVAL 1 {step}, '%Y-%m-%d')"
    )
}

/// `getFormatPartitionValue` for the ASCII values the tests use.
fn list_name(v: &str) -> String {
    let mut out = String::from("p");
    for c in v.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if c == '-' {
            out.push('_');
        }
    }
    out
}

/// Creates the partitions rows of an automatic table need (after a load wrote them into the
/// hidden partitions); `force` re-partitions the MariaDB table even when none is new.
pub async fn create_partitions(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    key: &Key,
    force: bool,
) -> Result<(), Fail> {
    // One creation at a time, reading the partitions under the guard: two loads of different
    // months that each read the list before the other wrote it lost one of the two (a flake of
    // automatic_and_list_partitions_are_created_as_the_target_loads in CI).
    let _one_at_a_time = shared.partitioning.lock().await;
    let Some(t) = shared.meta.lock().expect("meta").tables.get(key).cloned() else {
        return Ok(());
    };
    if !t.scheme.automatic() {
        return Ok(());
    }
    let col = t.column.clone().unwrap_or_default();
    let table = format!("`{}`.`{}`", shared.mdb(&key.0), key.1);
    let mut parts = t.auto_parts.clone();
    let mut added = Vec::new();
    match &t.scheme {
        Scheme::AutoRange(unit) => {
            let sql = format!(
                "{} FROM {table} WHERE `{col}` IS NOT NULL",
                range_sql(unit, &col)
            );
            for r in cells(shared, conn, &sql).await? {
                let (Some(name), Some(lo), Some(hi)) = (r[0].clone(), r[1].clone(), r[2].clone())
                else {
                    continue;
                };
                if !parts.iter().any(|p| p.name == name) {
                    let p = Partition {
                        name,
                        upper: format!("'{hi}'"),
                        values: format!("VALUES [(\"{lo}\"), (\"{hi}\"))"),
                    };
                    parts.push(p.clone());
                    added.push(p);
                }
            }
            parts.sort_by(|a, b| a.upper.cmp(&b.upper));
        }
        Scheme::AutoList => {
            let sql = format!("SELECT DISTINCT `{col}` FROM {table} WHERE `{col}` IS NOT NULL");
            for r in cells(shared, conn, &sql).await? {
                let Some(v) = r[0].clone() else { continue };
                let name = list_name(&v);
                if !parts.iter().any(|p| p.name == name) {
                    let p = Partition {
                        name,
                        upper: format!("'{}'", v.replace('\'', "''")),
                        values: format!("VALUES IN (\"{v}\")"),
                    };
                    parts.push(p.clone());
                    added.push(p);
                }
            }
        }
        _ => {}
    }
    if added.is_empty() && !force {
        return Ok(());
    }
    exec(
        shared,
        conn,
        &format!(
            "ALTER TABLE {table}{}",
            ddl::mariadb_partitioning(&t.scheme, &col, &parts)
        ),
    )
    .await?;
    let mut m = shared.meta.lock().expect("meta");
    for p in &added {
        // A created partition starts at version 1; the load that created it publishes version 2.
        m.versions
            .insert((key.0.clone(), key.1.clone(), p.name.clone()), 1);
    }
    if let Some(tm) = m.tables.get_mut(key) {
        tm.auto_parts = parts;
    }
    Ok(())
}
