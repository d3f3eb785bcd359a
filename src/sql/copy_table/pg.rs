//! Whether a copy to PostgreSQL writes its batches with COPY, and how.

use tokio_postgres::types::Type;

use super::*;
use crate::sql::pg_copy;

/// The COPY statement of a copy and the types its rows are encoded for.
pub(super) struct PgCopy {
    pub sql: String,
    pub types: Vec<Type>,
}

/// COPY for a PostgreSQL target when `load` asks for it (or leaves it to the default), duplicate
/// keys are errors (COPY can neither skip nor replace a row) and every column's type has a
/// binary encoding; `None` (INSERTs) otherwise, with a log line when COPY was asked for.
pub(super) async fn pg_copy_plan(
    dst: &Db,
    o: &Options,
    insert_cols: &[String],
) -> Result<Option<PgCopy>> {
    if dst.backend != Backend::Postgres || !matches!(o.load, LoadMode::Auto | LoadMode::Copy) {
        return Ok(None);
    }
    let asked = o.load == LoadMode::Copy;
    if o.on_conflict != OnConflict::Error {
        if asked {
            tracing::info!(target: EV, "{}: COPY cannot skip or replace rows whose key is already in {} (on_conflict = \"{}\"); copying with INSERT ... ON CONFLICT",
                o.title, o.dst_table, if o.on_conflict == OnConflict::Ignore { "ignore" } else { "replace" });
        }
        return Ok(None);
    }
    let cols: Vec<String> = insert_cols.iter().map(|c| quote(dst, c)).collect();
    let table = quote(dst, &o.dst_table);
    let mut conn = dst.conn().await?;
    let types = conn
        .pg_column_types(
            &dst.display,
            &format!("SELECT {} FROM {table} LIMIT 0", cols.join(", ")),
        )
        .await?;
    let other: Vec<String> = insert_cols
        .iter()
        .zip(&types)
        .filter(|(_, t)| !pg_copy::copyable_type(t))
        .map(|(n, t)| format!("{n} ({t})"))
        .collect();
    if !other.is_empty() {
        tracing::info!(target: EV, "{}: column(s) {} of {} are not written with COPY; copying with INSERT statements",
            o.title, other.join(", "), o.dst_table);
        return Ok(None);
    }
    Ok(Some(PgCopy {
        sql: pg_copy::statement(&table, &cols),
        types,
    }))
}
