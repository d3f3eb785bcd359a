//! `ferry.csv`: CSV through the `csv` crate (RFC 4180 quoting), with or without a header row.

use mlua::{Lua, Table, Value};

use crate::runtime::registry::{FnDoc, ModuleDef, Opt, Param};

pub static MODULE: ModuleDef = ModuleDef {
    name: "csv",
    summary: "CSV decode and encode, with or without a header row.",
    functions: &[
        FnDoc {
            name: "decode",
            signature: "ferry.csv.decode(text [, {header = true, delimiter = \",\"}]) -> rows, columns",
            params: &[Param::new("text", "string"), Param::opt("opts", "table")],
            options: &[
                Opt::def("header", "boolean", "true")
                    .doc("the first line names the columns: rows are tables keyed by name"),
                Opt::def("delimiter", "string", "\",\"").doc("the field separator, one character"),
            ],
            returns: "table[], string[]?",
            doc: "With a header, rows are tables keyed by column name and the second result lists \
                  the columns in order; without, rows are arrays of strings.",
            example: Some(
                "local rows, cols = ferry.csv.decode('id,name\\n1,\"a, b\"\\n')\nassert(rows[1].name == \"a, b\" and cols[1] == \"id\")",
            ),
        },
        FnDoc {
            name: "encode",
            signature: "ferry.csv.encode(rows [, {columns = {...}, header = true, delimiter = \",\"}]) -> text",
            params: &[Param::new("rows", "table[]"), Param::opt("opts", "table")],
            options: &[
                Opt::def("columns", "string[]", "{...}")
                    .doc("the columns, in order; default the keys of the rows, sorted"),
                Opt::def("header", "boolean", "true").doc("write the column names first"),
                Opt::def("delimiter", "string", "\",\"").doc("the field separator, one character"),
            ],
            returns: "string",
            doc: "Rows are arrays, or tables keyed by the given columns (sorted keys when columns \
                  are not given). Quotes fields as needed.",
            example: Some(
                "assert(ferry.csv.encode({{a = \"1\", b = \"x,y\"}}, {columns = {\"a\", \"b\"}}) == 'a,b\\n1,\"x,y\"\\n')",
            ),
        },
    ],
    classes: &[],
    constants: &[],
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

/// CSV text read into the header's columns (empty without a header) and the records as raw
/// fields (bytes: CSV data need not be UTF-8).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub columns: Vec<String>,
    pub records: Vec<Vec<Vec<u8>>>,
}

/// Reads CSV (RFC 4180 quoting, records of any length). With `header`, the first record names
/// the columns: it must be UTF-8 and name each column once (rows are keyed by column name, so a
/// repeated name would silently lose a column). Errors name the line.
pub fn decode(text: &[u8], header: bool, delimiter: u8) -> Result<Decoded, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(header)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text);
    let columns: Vec<String> = if header {
        // The csv crate reports a header error at "line 1" even after blank lines: count them.
        let body = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        let blank = body
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let line = 1 + String::from_utf8_lossy(&body[..blank])
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .matches('\n')
            .count();
        let h = rdr
            .byte_headers()
            .map_err(|e| format!("line {line}: {e}"))?;
        let columns = h
            .iter()
            .enumerate()
            .map(|(j, c)| {
                String::from_utf8(c.to_vec())
                    .map_err(|_| format!("line {line}: the name of column {} is not UTF-8", j + 1))
            })
            .collect::<Result<Vec<String>, String>>()?;
        for (j, c) in columns.iter().enumerate() {
            if let Some(first) = columns[..j].iter().position(|d| d == c) {
                return Err(format!(
                    "line {line}: the header names column {c:?} twice (columns {} and {}); read \
                     the file with {{header = false}} to get every column",
                    first + 1,
                    j + 1
                ));
            }
        }
        columns
    } else {
        Vec::new()
    };
    let mut records = Vec::new();
    for rec in rdr.byte_records() {
        let rec = rec.map_err(|e| e.to_string())?;
        records.push(rec.iter().map(<[u8]>::to_vec).collect());
    }
    Ok(Decoded { columns, records })
}

/// Writes CSV, quoting fields as needed; `columns`, when given, is written first as the header.
pub fn encode(
    columns: Option<&[String]>,
    records: &[Vec<Vec<u8>>],
    delimiter: u8,
) -> Result<Vec<u8>, String> {
    let head: Option<Vec<Vec<u8>>> =
        columns.map(|c| c.iter().map(|s| s.as_bytes().to_vec()).collect());
    let mut all = head.iter().chain(records);
    let Some(first) = all.next() else {
        return Ok(Vec::new());
    };
    // Readers drop a byte order mark at the very start of a file, so a first field that begins
    // with one is quoted to keep it data.
    let bom = first
        .first()
        .is_some_and(|f| f.starts_with(b"\xEF\xBB\xBF"));
    let writer = |style, out| {
        csv::WriterBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .quote_style(style)
            .from_writer(out)
    };
    let style = if bom {
        csv::QuoteStyle::Always
    } else {
        csv::QuoteStyle::Necessary
    };
    let mut w = writer(style, Vec::new());
    w.write_record(first).map_err(|e| e.to_string())?;
    let out = w.into_inner().map_err(|e| e.to_string())?;
    let mut w = writer(csv::QuoteStyle::Necessary, out);
    for r in all {
        w.write_record(r).map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
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
            let d = decode(&text.as_bytes(), header, delimiter(&opts)?)
                .map_err(|e| super::decode_error("ferry.csv.decode", e))?;
            let rows = lua.create_table()?;
            for (i, rec) in d.records.into_iter().enumerate() {
                let row = lua.create_table()?;
                for (j, field) in rec.into_iter().enumerate() {
                    let v = lua.create_string(field)?;
                    match d.columns.get(j) {
                        Some(c) => row.set(c.as_str(), v)?,
                        None => row.raw_set(j + 1, v)?,
                    }
                }
                rows.raw_set(i + 1, row)?;
            }
            Ok((rows, lua.create_sequence_from(d.columns)?))
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
            let mut records = Vec::new();
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
                records.push(fields);
            }
            // The header goes out with the first row, as before: no rows, no header.
            let head = columns.as_deref().filter(|_| header && !records.is_empty());
            let bytes = encode(head, &records, delimiter(&opts)?)
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

/// Fuzzing (issue 22): CSV files (Druid's segments table dumps, hand-edited lists) with hand-made
/// mistakes. Every rejection names a line; accepted records and any records of bytes survive
/// encode then decode.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::codec::mutate::{self, config, named_line, near_miss, value_text};
    use proptest::prelude::*;

    const TOKENS: &[&str] = &["\"\"", "\",\"", "a\"b", ",,", "\"\n\"", "\t", "\u{ff}"];

    fn field() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => value_text().prop_map(String::into_bytes),
            1 => "[,\"\\r\\n ]{0,4}".prop_map(String::into_bytes),
            1 => prop::collection::vec(any::<u8>(), 0..8),
        ]
    }

    fn records() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
        prop::collection::vec(prop::collection::vec(field(), 1..5), 0..8)
    }

    /// A valid CSV file (written by the encoder), as UTF-8 text for the mutations.
    fn csv_text() -> impl Strategy<Value = String> {
        records().prop_map(|r| {
            String::from_utf8_lossy(&encode(None, &r, b',').unwrap_or_default()).into_owned()
        })
    }

    proptest! {
        #![proptest_config(config(1000))]

        #[test]
        fn fuzz_csv_rejections_name_a_line_and_accepted_text_round_trips(
            text in near_miss(csv_text(), TOKENS),
            header in any::<bool>(),
        ) {
            match decode(text.as_bytes(), header, b',') {
                Ok(d) => {
                    // An empty file has no header record to write back.
                    let head = (header && !d.columns.is_empty()).then_some(d.columns.as_slice());
                    let written = encode(head, &d.records, b',');
                    prop_assert!(written.is_ok(), "{:?}", written);
                    let again = decode(&written.unwrap_or_default(), header, b',');
                    // A record of one empty field is written as `""`, so it reads back.
                    prop_assert_eq!(again.as_ref(), Ok(&d));
                }
                Err(e) => {
                    let n = named_line(&e);
                    prop_assert!(
                        n.is_some_and(|n| n >= 1 && n <= mutate::line_count(&text)),
                        "error names no line of the text: {}",
                        e
                    );
                }
            }
        }

        #[test]
        fn fuzz_csv_written_records_read_back_equal(
            recs in records(),
            delimiter in prop::sample::select(&[b',', b';', b'\t', b'|'][..]),
        ) {
            let text = encode(None, &recs, delimiter);
            prop_assert!(text.is_ok(), "{:?}", text);
            let text = text.unwrap_or_default();
            let back = decode(&text, false, delimiter).map(|d| d.records);
            prop_assert_eq!(back, Ok(recs), "text {:?}", String::from_utf8_lossy(&text));
        }

        #[test]
        fn fuzz_csv_header_and_rows_read_back_equal(
            columns in prop::collection::btree_set("[a-z_]{0,6}", 1..5),
            recs in records(),
        ) {
            let columns: Vec<String> = columns.into_iter().collect();
            let text = encode(Some(&columns), &recs, b',').unwrap_or_default();
            let back = decode(&text, true, b',');
            prop_assert_eq!(back, Ok(Decoded { columns, records: recs }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzz_csv_rejections_name_a_line_and_accepted_text_round_trips: a first field
    /// starting with U+FEFF was written bare at the start of the file, where readers take it
    /// for a byte order mark and drop it.
    #[test]
    fn regression_leading_bom_in_data_is_quoted() {
        let recs = vec![vec!["\u{feff}".as_bytes().to_vec()], vec![b"x".to_vec()]];
        let text = encode(None, &recs, b',').unwrap();
        assert_eq!(text, "\"\u{feff}\"\nx\n".as_bytes());
        assert_eq!(decode(&text, false, b',').unwrap().records, recs);
        // A real BOM before the header is still skipped.
        let d = decode("\u{feff}id,name\n1,a\n".as_bytes(), true, b',').unwrap();
        assert_eq!(d.columns, ["id", "name"]);
    }

    #[test]
    fn repeated_header_names_are_refused_with_the_line() {
        let err = decode(b"id,name,id\n1,a,2\n", true, b',').unwrap_err();
        assert!(
            err.starts_with("line 1:") && err.contains("columns 1 and 3"),
            "{err}"
        );
        assert_eq!(
            decode(b"id,name,id\n", false, b',').unwrap().records.len(),
            1
        );
    }

    #[test]
    fn invalid_utf8_header_names_the_line() {
        let err = decode(b"\n\nid,\xff\n", true, b',').unwrap_err();
        assert!(err.starts_with("line 3: the name of column 2"), "{err}");
    }
}
