//! The StarRocks double's SHOW answers, with the columns of reference/starrocks.md §2 and §4.1.

use super::{Answer, Fail, Key, Shared, TableMeta, cols, ddl, fail, fingerprints, qualified, re};

/// 1-based position of a partition in its table (the double's PartitionId is table id * 100 + it).
pub fn partition_index(t: &TableMeta, name: &str) -> i64 {
    let names: Vec<String> = if t.scheme.automatic() {
        t.auto_parts.iter().map(|p| p.name.clone()).collect()
    } else {
        ddl::partitions(&t.ddl)
            .into_iter()
            .map(|p| p.name)
            .collect()
    };
    names
        .iter()
        .position(|n| n == name)
        .map(|i| i as i64 + 1)
        .unwrap_or(1)
}

/// SHOW PARTITIONS as FE `PartitionsProcDir` answers it: one row per physical partition
/// (`getPartitionInfos` loops over `partition.getSubPartitions()`), the shared-nothing columns
/// (`getOlapPartitionInfo`) or, for a shared-data cluster, the lake ones (`getLakePartitionInfo`:
/// CompactVersion, VisibleVersion, NextVersion, ..., DataSize, RowCount, cache and compaction
/// score columns). The eighth column is `List` for list partitioning (`createTitleNames`).
pub async fn show_partitions(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    key: &Key,
) -> Result<Answer, Fail> {
    let t = shared
        .meta
        .lock()
        .expect("meta")
        .tables
        .get(key)
        .cloned()
        .ok_or_else(|| (1146, format!("Unknown table '{}.{}'", key.0, key.1)))?;
    let busy = shared
        .meta
        .lock()
        .expect("meta")
        .compact_on_show
        .get(key)
        .copied()
        .unwrap_or(0);
    if busy > 0 {
        let names = super::partition_names(shared, key);
        let mut m = shared.meta.lock().expect("meta");
        for name in names {
            for _ in 0..busy {
                super::compact_current(&mut m, &key.0, &key.1, &name);
            }
        }
    }
    let fps = fingerprints(shared, conn, key).await?;
    let parsed = ddl::parse(&t.ddl).map_err(fail)?;
    let dist = if re(r"(?is)DISTRIBUTED\s+BY\s+RANDOM").is_match(&t.ddl) {
        // distributionKeyAsString: "ALL KEY" for anything but hash.
        let b = re(r"(?is)DISTRIBUTED\s+BY\s+RANDOM\s+BUCKETS\s+(\d+)")
            .captures(&t.ddl)
            .map(|c| c[1].to_string())
            .unwrap_or("0".into());
        ("ALL KEY".to_string(), b)
    } else {
        re(r"(?is)DISTRIBUTED\s+BY\s+HASH\s*\(([^)]*)\)(?:\s+BUCKETS\s+(\d+))?")
            .captures(&t.ddl)
            .map(|c| {
                (
                    c[1].replace('`', ""),
                    c.get(2)
                        .map(|b| b.as_str().to_string())
                        .unwrap_or("3".into()),
                )
            })
            .unwrap_or(("".into(), "3".into()))
    };
    let repl = re(r#""replication_num"\s*=\s*"(\d+)""#)
        .captures(&t.ddl)
        .map(|c| c[1].to_string())
        .unwrap_or("3".into());
    let mut rows = Vec::new();
    let m = shared.meta.lock().expect("meta");
    let names: Vec<(String, String)> = if t.scheme.automatic() {
        t.auto_parts
            .iter()
            .map(|p| (p.name.clone(), p.values.clone()))
            .collect()
    } else if t.partitioned {
        parsed
            .partitions
            .iter()
            .map(|p| (p.name.clone(), p.values.clone()))
            .collect()
    } else {
        vec![(key.1.clone(), String::new())]
    };
    for (i, (name, values)) in names.into_iter().enumerate() {
        let k = (key.0.clone(), key.1.clone(), name.clone());
        let v = m.versions.get(&k).copied().unwrap_or(1);
        let (count, _) = fps.get(&name).cloned().unwrap_or((0, String::new()));
        let id = m
            .current_ids
            .get(&k)
            .copied()
            .unwrap_or(t.id * 100 + i as i64 + 1);
        let sealed = m.sealed.get(&k).cloned().unwrap_or_default();
        let sealed_rows: i64 = sealed.iter().map(|s| s.rows).sum();
        let mut physical: Vec<(i64, i64, i64)> =
            sealed.iter().map(|s| (s.id, s.version, s.rows)).collect();
        physical.push((id, v, count - sealed_rows));
        let range = if t.scheme.list() {
            list_text(&values)
        } else {
            range_text(&values)
        };
        let column = parsed.partition_column.clone().unwrap_or_default();
        for (id, v, count) in physical {
            let size = m
                .data_size_shown
                .clone()
                .unwrap_or_else(|| format!("{:.3}KB", count as f64 * 0.05));
            if m.shared_data {
                let compact = m.compact_versions.get(&id).copied().unwrap_or(0);
                rows.push(vec![
                    Some(id.to_string()),
                    Some(name.clone()),
                    Some(compact.to_string()),
                    Some(v.to_string()),
                    Some((v + 1).to_string()),
                    Some("NORMAL".into()),
                    Some(column.clone()),
                    Some(range.clone()),
                    Some(dist.0.clone()),
                    Some(dist.1.clone()),
                    Some(size),
                    Some(count.to_string()),
                    Some("true".into()),
                    Some("false".into()),
                    Some("1.00".into()),
                    Some("1.00".into()),
                    Some("1.00".into()),
                ]);
            } else {
                rows.push(vec![
                    Some(id.to_string()),
                    Some(name.clone()),
                    Some(v.to_string()),
                    Some("2024-06-01 12:00:00".into()),
                    Some("0".into()),
                    Some("NORMAL".into()),
                    Some(column.clone()),
                    Some(range.clone()),
                    Some(dist.0.clone()),
                    Some(dist.1.clone()),
                    Some(repl.clone()),
                    Some("HDD".into()),
                    Some("9999-12-31 23:59:59".into()),
                    None,
                    Some(size),
                    Some("false".into()),
                    Some(count.to_string()),
                ]);
            }
        }
    }
    let eighth = if t.scheme.list() { "List" } else { "Range" };
    let names: Vec<&str> = if m.shared_data {
        vec![
            "PartitionId",
            "PartitionName",
            "CompactVersion",
            "VisibleVersion",
            "NextVersion",
            "State",
            "PartitionKey",
            eighth,
            "DistributionKey",
            "Buckets",
            "DataSize",
            "RowCount",
            "EnableDataCache",
            "AsyncWrite",
            "AvgCS",
            "P50CS",
            "MaxCS",
        ]
    } else {
        vec![
            "PartitionId",
            "PartitionName",
            "VisibleVersion",
            "VisibleVersionTime",
            "VisibleVersionHash",
            "State",
            "PartitionKey",
            eighth,
            "DistributionKey",
            "Buckets",
            "ReplicationNum",
            "StorageMedium",
            "CooldownTime",
            "LastConsistencyCheckTime",
            "DataSize",
            "IsInMemory",
            "RowCount",
        ]
    };
    Ok(Answer::Rows(cols(&names), rows))
}

/// `VALUES IN ("a", "b")` as ListPartitionInfo.getValuesFormat prints it: `(('a'), ('b'))`.
fn list_text(values: &str) -> String {
    let vals: Vec<String> = re(r#""([^"]*)"|'([^']*)'"#)
        .captures_iter(values)
        .map(|c| {
            format!(
                "('{}')",
                c.get(1)
                    .or_else(|| c.get(2))
                    .map(|m| m.as_str())
                    .unwrap_or("")
            )
        })
        .collect();
    format!("({})", vals.join(", "))
}

/// `VALUES [("a"), ("b"))` as SHOW PARTITIONS prints a range:
/// `[types: [DATE]; keys: [a]; ..types: [DATE]; keys: [b]; )`.
fn range_text(values: &str) -> String {
    let vals: Vec<String> = re(r#""([^"]*)""#)
        .captures_iter(values)
        .map(|c| c[1].to_string())
        .collect();
    if vals.len() != 2 {
        return String::new();
    }
    let ty = |v: &str| {
        if re(r"^\d{4}-\d{2}-\d{2}$").is_match(v) {
            "DATE"
        } else if v.parse::<i64>().is_ok() {
            "BIGINT"
        } else {
            "VARCHAR"
        }
    };
    format!(
        "[types: [{}]; keys: [{}]; ..types: [{}]; keys: [{}]; )",
        ty(&vals[0]),
        vals[0],
        ty(&vals[1]),
        vals[1]
    )
}

pub fn show_config(shared: &Shared, pattern: Option<&str>) -> Answer {
    let m = shared.meta.lock().expect("meta");
    let matcher = pattern.map(|p| {
        let rx = regex::escape(p).replace('%', ".*").replace('_', ".");
        re(&format!("(?i)^{rx}$"))
    });
    let rows = m
        .config
        .iter()
        .filter(|(k, _)| matcher.as_ref().is_none_or(|r| r.is_match(k)))
        .map(|(k, c)| {
            vec![
                Some(k.clone()),
                Some("[]".into()),
                Some(c.value.clone()),
                Some(c.ty.into()),
                Some(c.mutable.to_string()),
                Some(String::new()),
            ]
        })
        .collect();
    Answer::Rows(
        cols(&["Key", "AliasNames", "Value", "Type", "IsMutable", "Comment"]),
        rows,
    )
}

pub fn show_frontends(shared: &Shared) -> Answer {
    let (ip, http) = shared
        .meta
        .lock()
        .expect("meta")
        .fe_shown
        .clone()
        .unwrap_or(("127.0.0.1".into(), shared.http_port));
    let c = cols(&[
        "Name",
        "IP",
        "EditLogPort",
        "HttpPort",
        "QueryPort",
        "RpcPort",
        "Role",
        "ClusterId",
        "Join",
        "Alive",
        "ReplayedJournalId",
        "LastHeartbeat",
        "IsHelper",
        "ErrMsg",
        "StartTime",
        "Version",
    ]);
    let row = vec![
        Some(format!("{ip}_9010_1717243200000")),
        Some(ip),
        Some("9010".into()),
        Some(http.to_string()),
        Some(shared.query_port.to_string()),
        Some("9020".into()),
        Some("LEADER".into()),
        Some("1234567".into()),
        Some("true".into()),
        Some("true".into()),
        Some("1001".into()),
        Some("2024-06-01 12:00:00".into()),
        Some("true".into()),
        Some(String::new()),
        Some("2024-06-01 11:00:00".into()),
        Some("3.3.0-double".into()),
    ];
    Answer::Rows(c, vec![row])
}

pub fn show_backends(shared: &Shared) -> Answer {
    let pct = shared.meta.lock().expect("meta").max_disk_used_pct;
    let c = cols(&[
        "BackendId",
        "IP",
        "HeartbeatPort",
        "BePort",
        "HttpPort",
        "BrpcPort",
        "LastStartTime",
        "LastHeartbeat",
        "Alive",
        "SystemDecommissioned",
        "ClusterDecommissioned",
        "TabletNum",
        "DataUsedCapacity",
        "AvailCapacity",
        "TotalCapacity",
        "UsedPct",
        "MaxDiskUsedPct",
        "ErrMsg",
        "Version",
        "Status",
        "DataTotalCapacity",
        "DataUsedPct",
        "CpuCores",
    ]);
    let row = vec![
        Some("10001".into()),
        Some("127.0.0.1".into()),
        Some("9050".into()),
        Some("9060".into()),
        Some(shared.be_http_port.to_string()),
        Some("8060".into()),
        Some("2024-06-01 11:00:00".into()),
        Some("2024-06-01 12:00:00".into()),
        Some("true".into()),
        Some("false".into()),
        Some("false".into()),
        Some("42".into()),
        Some("1.000 GB".into()),
        Some("7.000 GB".into()),
        Some("8.000 GB".into()),
        Some(format!("{pct:.2} %")),
        Some(format!("{pct:.2} %")),
        Some(String::new()),
        Some("3.3.0-double".into()),
        Some(r#"{"lastSuccessReportTabletsTime":"2024-06-01 12:00:00"}"#.into()),
        Some("8.000 GB".into()),
        Some(format!("{pct:.2} %")),
        Some("2".into()),
    ];
    Answer::Rows(c, vec![row])
}

pub async fn show_data(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    sql: &str,
) -> Result<Answer, Fail> {
    if let Some(c) = re(r"(?is)^SHOW\s+DATA\s+FROM\s+(\S+)$").captures(sql) {
        let key = qualified(&c[1])?;
        let fps = fingerprints(shared, conn, &key).await?;
        let rows: i64 = fps.values().map(|v| v.0).sum();
        let size = format!("{:.3} KB", rows as f64 * 0.05 * 3.0);
        return Ok(Answer::Rows(
            cols(&["TableName", "IndexName", "Size", "ReplicaCount", "RowCount"]),
            vec![
                vec![
                    Some(key.1.clone()),
                    Some(key.1.clone()),
                    Some(size.clone()),
                    Some("9".into()),
                    Some(rows.to_string()),
                ],
                vec![
                    Some(String::new()),
                    Some("Total".into()),
                    Some(size),
                    Some("9".into()),
                    Some(String::new()),
                ],
            ],
        ));
    }
    // SHOW DATA: the tables of every database, then Total, Quota and Left.
    let keys: Vec<Key> = shared
        .meta
        .lock()
        .expect("meta")
        .tables
        .keys()
        .cloned()
        .collect();
    let mut rows = Vec::new();
    let mut total = 0f64;
    for k in keys {
        let fps = fingerprints(shared, conn, &k).await?;
        let kb = fps.values().map(|v| v.0).sum::<i64>() as f64 * 0.15;
        total += kb;
        rows.push(vec![
            Some(k.1.clone()),
            Some(format!("{kb:.3} KB")),
            Some("9".into()),
        ]);
    }
    rows.push(vec![
        Some("Total".into()),
        Some(format!("{total:.3} KB")),
        Some("9".into()),
    ]);
    rows.push(vec![
        Some("Quota".into()),
        Some("1024.000 GB".into()),
        Some("1073741824".into()),
    ]);
    rows.push(vec![
        Some("Left".into()),
        Some("1023.999 GB".into()),
        Some("1073741815".into()),
    ]);
    Ok(Answer::Rows(
        cols(&["TableName", "Size", "ReplicaCount"]),
        rows,
    ))
}

/// `information_schema.partitions_meta` (fe SchemaTable PARTITIONS_META, filled from
/// PhysicalPartition): one row per physical partition, the columns ferry reads. DATA_VERSION moves
/// with loads only (LakeTableTxnLogApplier.applyVisibleLog), VISIBLE_VERSION with compactions too.
pub async fn partitions_meta(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    key: &Key,
) -> Result<Answer, Fail> {
    let Answer::Rows(_, rows) = show_partitions(shared, conn, key).await? else {
        return Ok(Answer::Rows(cols(&[]), Vec::new()));
    };
    let m = shared.meta.lock().expect("meta");
    let lake = m.shared_data;
    let out = rows
        .into_iter()
        .map(|r| {
            let id: i64 = r[0].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
            let visible: i64 = r[if lake { 3 } else { 2 }]
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let compact = if lake { r[2].clone() } else { Some("0".into()) };
            let data = visible - m.compactions.get(&id).copied().unwrap_or(0);
            vec![
                Some(key.0.clone()),
                Some(key.1.clone()),
                r[1].clone(),
                Some(id.to_string()),
                compact,
                Some(visible.to_string()),
                Some(data.to_string()),
            ]
        })
        .collect();
    Ok(Answer::Rows(
        cols(&[
            "DB_NAME",
            "TABLE_NAME",
            "PARTITION_NAME",
            "PARTITION_ID",
            "COMPACT_VERSION",
            "VISIBLE_VERSION",
            "DATA_VERSION",
        ]),
        out,
    ))
}
