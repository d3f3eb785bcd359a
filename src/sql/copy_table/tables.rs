//! What the two tables have: their columns and primary keys (information_schema), and the columns
//! a copy reads and writes, checked against both.

use super::*;

pub(super) struct TableInfo {
    pub(super) columns: Vec<(String, String)>, // (name, data type)
    pub(super) primary_key: Vec<String>,
}

pub(super) async fn table_info(db: &Db, table: &str) -> Result<Option<TableInfo>> {
    let (schema, name) = match table.split_once('.') {
        Some((s, n)) => (Some(s.to_string()), n.to_string()),
        None => (None, table.to_string()),
    };
    let (cols_sql, pk_sql) = match db.backend {
        Backend::Mysql => (
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
             ORDER BY ORDINAL_POSITION",
        ),
        Backend::Postgres => (
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = COALESCE(?::text, current_schema()) AND table_name = ? ORDER BY ordinal_position",
            "SELECT kcu.column_name::text FROM information_schema.table_constraints tc \
             JOIN information_schema.key_column_usage kcu \
               ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema \
              AND kcu.table_name = tc.table_name \
             WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = COALESCE(?::text, current_schema()) \
               AND tc.table_name = ? ORDER BY kcu.ordinal_position",
        ),
    };
    let schema_v = schema.map(SqlValue::Text).unwrap_or(SqlValue::Null);
    let params = [schema_v, SqlValue::Text(name)];
    let cols = db.query(cols_sql, &params).await?;
    if cols.rows.is_empty() {
        return Ok(None);
    }
    let text = |v: &SqlValue| String::from_utf8_lossy(&v.canonical()).into_owned();
    let pk = db.query(pk_sql, &params).await?;
    Ok(Some(TableInfo {
        columns: cols
            .rows
            .iter()
            .map(|r| (text(&r[0]), text(&r[1]).to_ascii_lowercase()))
            .collect(),
        primary_key: pk.rows.iter().map(|r| text(&r[0])).collect(),
    }))
}

pub(super) fn is_integer_type(t: &str) -> bool {
    matches!(
        t,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
    )
}
/// The columns of a copy: the key, the columns written (in order), the columns selected (the
/// written ones, then any key column not among them) and where each key column is in a row read.
pub(super) struct Columns {
    pub(super) key: Vec<String>,
    pub(super) insert: Vec<String>,
    pub(super) select: Vec<String>,
    pub(super) key_idx: Vec<usize>,
}

/// Chooses the key (the given one, else the source's primary key) and the columns, and refuses a
/// column missing on either side.
pub(super) fn columns(
    o: &Options,
    sinfo: &TableInfo,
    dinfo: &TableInfo,
    dst: &Db,
) -> Result<Columns> {
    let src_names: Vec<String> = sinfo.columns.iter().map(|c| c.0.clone()).collect();
    let key = match o.key.clone() {
        Some(k) => k,
        None if !sinfo.primary_key.is_empty() => sinfo.primary_key.clone(),
        None => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!("table {} has no primary key", o.table),
            )
            .hint("give key = \"column\" (a unique, ordered column) to copy_table"));
        }
    };
    let insert_cols = o.columns.clone().unwrap_or_else(|| src_names.clone());
    let missing_src: Vec<&String> = insert_cols
        .iter()
        .chain(key.iter())
        .filter(|c| !src_names.contains(c))
        .collect();
    if !missing_src.is_empty() {
        return Err(FerryError::new(
            ErrorKind::InvalidInput,
            format!(
                "source table {} has no column(s) {}",
                o.table,
                missing_src
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let dst_names: Vec<&String> = dinfo.columns.iter().map(|c| &c.0).collect();
    let missing_dst: Vec<&String> = insert_cols
        .iter()
        .filter(|c| !dst_names.contains(c))
        .collect();
    if !missing_dst.is_empty() {
        return Err(FerryError::new(
            ErrorKind::InvalidInput,
            format!(
                "target table {} in {} lacks column(s) {} that the copy writes",
                o.dst_table,
                dst.display,
                missing_dst
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .hint("add the columns to the target, or choose columns = {...}"));
    }
    let mut select_cols = insert_cols.clone();
    for k in &key {
        if !select_cols.contains(k) {
            select_cols.push(k.clone());
        }
    }
    let key_idx: Vec<usize> = key
        .iter()
        .map(|k| select_cols.iter().position(|c| c == k).unwrap_or(0))
        .collect();
    Ok(Columns {
        key,
        insert: insert_cols,
        select: select_cols,
        key_idx,
    })
}
