//! `ferry.csv`: CSV through the `csv` crate (RFC 4180 quoting), with or without a header row.

use mlua::{Lua, Table, Value};

use crate::runtime::registry::{FnDoc, ModuleDef};

pub static MODULE: ModuleDef = ModuleDef {
    name: "csv",
    summary: "CSV decode and encode, with or without a header row.",
    functions: &[
        FnDoc {
            name: "decode",
            signature: "ferry.csv.decode(text [, {header = true, delimiter = \",\"}]) -> rows, columns",
            doc: "With a header, rows are tables keyed by column name and the second result lists \
                  the columns in order; without, rows are arrays of strings.",
            example: Some(
                "local rows, cols = ferry.csv.decode('id,name\\n1,\"a, b\"\\n')\nassert(rows[1].name == \"a, b\" and cols[1] == \"id\")",
            ),
        },
        FnDoc {
            name: "encode",
            signature: "ferry.csv.encode(rows [, {columns = {...}, header = true, delimiter = \",\"}]) -> text",
            doc: "Rows are arrays, or tables keyed by the given columns (sorted keys when columns \
                  are not given). Quotes fields as needed.",
            example: Some(
                "assert(ferry.csv.encode({{a = \"1\", b = \"x,y\"}}, {columns = {\"a\", \"b\"}}) == 'a,b\\n1,\"x,y\"\\n')",
            ),
        },
    ],
    build,
};

fn delimiter(opts: &Option<Table>) -> mlua::Result<u8> {
    let d = match opts {
        Some(o) => o.get::<Option<String>>("delimiter")?,
        None => None,
    };
    match d.as_deref() {
        None => Ok(b','),
        Some(s) if s.len() == 1 => Ok(s.as_bytes()[0]),
        Some("\\t") => Ok(b'\t'),
        Some(other) => Err(super::decode_error(
            "ferry.csv",
            format!("delimiter must be one byte, got {other:?}"),
        )),
    }
}

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "decode",
        lua.create_function(|lua, (text, opts): (mlua::LuaString, Option<Table>)| {
            crate::runtime::options::check_optional(opts.as_ref(), &MODULE, "decode")?;
            let header = match &opts {
                Some(o) => o.get::<Option<bool>>("header")?.unwrap_or(true),
                None => true,
            };
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(header)
                .flexible(true)
                .delimiter(delimiter(&opts)?)
                .from_reader(std::io::Cursor::new(text.as_bytes().to_vec()));
            let columns: Vec<String> = if header {
                rdr.headers()
                    .map_err(|e| super::decode_error("ferry.csv.decode", e))?
                    .iter()
                    .map(str::to_string)
                    .collect()
            } else {
                Vec::new()
            };
            let rows = lua.create_table()?;
            for (i, rec) in rdr.byte_records().enumerate() {
                let rec = rec.map_err(|e| super::decode_error("ferry.csv.decode", e))?;
                let row = lua.create_table()?;
                for (j, field) in rec.iter().enumerate() {
                    let v = lua.create_string(field)?;
                    if header {
                        match columns.get(j) {
                            Some(c) => row.set(c.as_str(), v)?,
                            None => row.raw_set(j + 1, v)?,
                        }
                    } else {
                        row.raw_set(j + 1, v)?;
                    }
                }
                rows.raw_set(i + 1, row)?;
            }
            Ok((rows, lua.create_sequence_from(columns)?))
        })?,
    )?;
    m.set(
        "encode",
        lua.create_function(|lua, (rows, opts): (Table, Option<Table>)| {
            crate::runtime::options::check_optional(opts.as_ref(), &MODULE, "encode")?;
            let mut columns: Option<Vec<String>> = match &opts {
                Some(o) => o
                    .get::<Option<Table>>("columns")?
                    .map(|c| {
                        c.sequence_values::<String>()
                            .collect::<mlua::Result<Vec<_>>>()
                    })
                    .transpose()?,
                None => None,
            };
            let header = match &opts {
                Some(o) => o.get::<Option<bool>>("header")?.unwrap_or(true),
                None => true,
            };
            let mut w = csv::WriterBuilder::new()
                .delimiter(delimiter(&opts)?)
                .from_writer(Vec::new());
            let mut wrote_header = false;
            for row in rows.sequence_values::<Table>() {
                let row = row?;
                let fields: Vec<Vec<u8>> = if row.raw_len() > 0 {
                    row.sequence_values::<Value>()
                        .map(|v| v.and_then(|v| field_bytes(lua, v)))
                        .collect::<mlua::Result<_>>()?
                } else {
                    if columns.is_none() {
                        let mut keys: Vec<String> = row
                            .pairs::<String, Value>()
                            .map(|p| p.map(|(k, _)| k))
                            .collect::<mlua::Result<_>>()?;
                        keys.sort();
                        columns = Some(keys);
                    }
                    let cols = columns.as_ref().expect("set above");
                    cols.iter()
                        .map(|c| {
                            row.get::<Value>(c.as_str())
                                .and_then(|v| field_bytes(lua, v))
                        })
                        .collect::<mlua::Result<_>>()?
                };
                if header && !wrote_header {
                    if let Some(cols) = &columns {
                        w.write_record(cols)
                            .map_err(|e| super::decode_error("ferry.csv.encode", e))?;
                    }
                    wrote_header = true;
                }
                w.write_record(&fields)
                    .map_err(|e| super::decode_error("ferry.csv.encode", e))?;
            }
            let bytes = w
                .into_inner()
                .map_err(|e| super::decode_error("ferry.csv.encode", e))?;
            lua.create_string(&bytes)
        })?,
    )?;
    Ok(m)
}

fn field_bytes(_lua: &Lua, v: Value) -> mlua::Result<Vec<u8>> {
    Ok(match v {
        Value::Nil => Vec::new(),
        Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string()?.into_bytes(),
    })
}
