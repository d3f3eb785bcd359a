//! Rows in the text form `LOAD DATA LOCAL INFILE` reads, for copy_table's MySQL/MariaDB load
//! path: the server parses tab-separated text far more cheaply than it prepares and binds a
//! multi-row INSERT of thousands of placeholders.
//!
//! The format is LOAD DATA's default one, spelled out in the statement so a server default
//! cannot change it: fields end with a tab, lines with a newline, `\` escapes, nothing encloses
//! fields, NULL is `\N`. Every byte that could be read as structure (`\`, tab, newline, NUL) is
//! escaped, so binary values arrive byte for byte; the file is declared utf8mb4, the
//! connection's character set, so text columns get the same conversion as bound parameters.

use std::fmt::Write;

use bytes::{BufMut, Bytes, BytesMut};

use super::value::SqlValue;

/// Target column types (information_schema DATA_TYPE) whose text form LOAD DATA stores as a
/// bound parameter of the same value would be. Others (BIT, spatial types, ...) keep INSERTs.
pub fn loadable_type(data_type: &str) -> bool {
    matches!(
        data_type,
        "tinyint"
            | "smallint"
            | "mediumint"
            | "int"
            | "integer"
            | "bigint"
            | "decimal"
            | "numeric"
            | "float"
            | "double"
            | "real"
            | "char"
            | "varchar"
            | "tinytext"
            | "text"
            | "mediumtext"
            | "longtext"
            | "binary"
            | "varbinary"
            | "tinyblob"
            | "blob"
            | "mediumblob"
            | "longblob"
            | "date"
            | "datetime"
            | "timestamp"
            | "time"
            | "year"
            | "json"
            | "enum"
            | "set"
            | "uuid"
            | "inet4"
            | "inet6"
    )
}

/// How LOAD DATA treats a row whose key is already in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    /// Neither keyword: with LOCAL the server skips the row with a warning (it cannot stop the
    /// client's transfer), so the caller checks the warning count and affected rows.
    Default,
    Ignore,
    Replace,
}

/// The statement loading `columns` of `table` (both already quoted) from the handler's stream.
pub fn statement(table: &str, columns: &[String], dup: Duplicates) -> String {
    let dup = match dup {
        Duplicates::Default => "",
        Duplicates::Ignore => " IGNORE",
        Duplicates::Replace => " REPLACE",
    };
    format!(
        "LOAD DATA LOCAL INFILE 'ferry-copy-table'{dup} INTO TABLE {table} CHARACTER SET utf8mb4 \
         FIELDS TERMINATED BY '\\t' ENCLOSED BY '' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' \
         STARTING BY '' ({})",
        columns.join(", ")
    )
}

fn escaped(out: &mut BytesMut, bytes: &[u8]) {
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0 => b"\\0",
            _ => continue,
        };
        out.put_slice(&bytes[start..i]);
        out.put_slice(esc);
        start = i + 1;
    }
    out.put_slice(&bytes[start..]);
}

fn field(out: &mut BytesMut, v: &SqlValue) {
    match v {
        SqlValue::Null => out.put_slice(b"\\N"),
        // Writing into a BytesMut cannot fail.
        SqlValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        SqlValue::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        // Rust prints the shortest text that parses back to the same double.
        SqlValue::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        SqlValue::Bool(b) => out.put_u8(if *b { b'1' } else { b'0' }),
        SqlValue::Text(s) => escaped(out, s.as_bytes()),
        SqlValue::Bytes(b) => escaped(out, b),
    }
}

/// One batch in LOAD DATA's text form: one line per row, `width` values per row.
pub fn encode(values: &[SqlValue], width: usize) -> Bytes {
    let width = width.max(1);
    let mut out = BytesMut::with_capacity(values.len() * 24);
    for row in values.chunks(width) {
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                out.put_u8(b'\t');
            }
            field(&mut out, v);
        }
        out.put_u8(b'\n');
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_bytes_are_escaped_and_null_is_backslash_n() {
        let rows = [
            SqlValue::Int(-7),
            SqlValue::Bytes(vec![0, b'\t', b'\n', b'\\', b'N', 0xff]),
            SqlValue::Null,
            SqlValue::Text("NULL".into()),
            SqlValue::UInt(u64::MAX),
            SqlValue::Float(0.1),
            SqlValue::Bool(true),
            SqlValue::Text(String::new()),
        ];
        assert_eq!(
            &encode(&rows, 4)[..],
            b"-7\t\\0\\t\\n\\\\N\xff\t\\N\tNULL\n18446744073709551615\t0.1\t1\t\n"
        );
    }

    #[test]
    fn statement_names_the_format_and_the_duplicate_rule() {
        let s = statement("`t`", &["`a`".into(), "`b`".into()], Duplicates::Replace);
        assert!(s.starts_with("LOAD DATA LOCAL INFILE 'ferry-copy-table' REPLACE INTO TABLE `t`"));
        assert!(s.contains("ESCAPED BY '\\\\'"));
        assert!(s.ends_with("(`a`, `b`)"));
    }
}
