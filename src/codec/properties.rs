//! `ferry.properties`: Java `.properties` files (Druid's common.runtime.properties, StarRocks'
//! sync.properties), with Java's escapes and line continuations.

use std::collections::HashMap;

use mlua::{Lua, Table};

use crate::runtime::registry::{FnDoc, ModuleDef, Opt, Param};

pub static MODULE: ModuleDef = ModuleDef {
    name: "properties",
    summary: "Java .properties decode and encode (escapes, continuations, = or : separators).",
    functions: &[
        FnDoc {
            name: "decode",
            signature: "ferry.properties.decode(text [, {path = FILE}]) -> {key = value}, {key = line}",
            params: &[Param::new("text", "string"), Param::opt("opts", "table")],
            options: &[Opt::new("path", "string").doc("the file's name, shown in errors")],
            returns: "table<string, string>, table<string, integer>",
            doc: "Parses Java properties text as java.util.Properties.load(Reader) does; later \
                  keys win, as in Java. The second result gives the line each key was read from. \
                  Raises invalid_input naming the line (and path, when given) on a malformed \
                  \\uXXXX escape.",
            example: Some(
                "local p = ferry.properties.decode(\"a=1\\n# c\\nb : two \\\\\\n  words\\n\")\nassert(p.a == \"1\" and p.b == \"two words\")",
            ),
        },
        FnDoc {
            name: "encode",
            signature: "ferry.properties.encode(t) -> text",
            params: &[Param::new("t", "table<string, string>")],
            options: &[],
            returns: "string",
            doc: "Writes key=value lines sorted by key, escaping as Java does.",
            example: Some(
                "assert(ferry.properties.encode({b = \"2\", a = \"1\"}) == \"a=1\\nb=2\\n\")",
            ),
        },
    ],
    classes: &[],
    constants: &[],
    build,
};

/// One `key=value` of a properties file, with the line its (logical) line starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Parses properties text into a map; a key given twice keeps its last value, as in Java.
pub fn decode(text: &str) -> Result<HashMap<String, String>, String> {
    Ok(decode_entries(text)?
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect())
}

/// Parses properties text as `java.util.Properties.load(Reader)` does (JDK 9+ `LineReader` and
/// `loadConvert`), keeping file order and line numbers. The text is already Unicode: unlike
/// `load(InputStream)` there is no ISO-8859-1 step, so UTF-8 files (Druid reads its runtime
/// properties as UTF-8) keep their non-ASCII characters. Errors name the line.
pub fn decode_entries(text: &str) -> Result<Vec<Entry>, String> {
    logical_lines(text)
        .into_iter()
        .map(|(line, chars)| {
            let (key, value) = split_key_value(&chars);
            Ok(Entry {
                key: unescape(key, line, "key")?,
                value: unescape(value, line, "value")?,
                line,
            })
        })
        .collect()
}

/// Java's `LineReader`: natural lines end at `\n`, `\r\n` or `\r`; leading blanks (space, tab,
/// form feed) and blank lines are skipped; a line whose first character is `#` or `!` is a
/// comment; an odd number of backslashes at the end continues the line on the next one, whose
/// leading blanks are dropped (an empty next line ends it). Yields (first line number, chars).
fn logical_lines(text: &str) -> Vec<(usize, Vec<char>)> {
    let mut out = Vec::new();
    let mut buf: Vec<char> = Vec::new();
    let (mut line, mut start_line) = (1, 1);
    let (mut skip_blank, mut appended, mut at_start, mut comment) = (true, false, true, false);
    let (mut backslashes, mut skip_lf) = (0usize, false);
    for c in text.chars() {
        if skip_lf {
            skip_lf = false;
            if c == '\n' {
                continue;
            }
        }
        if skip_blank {
            if matches!(c, ' ' | '\t' | '\x0c') {
                continue;
            }
            if !appended && matches!(c, '\r' | '\n') {
                skip_lf = c == '\r';
                line += 1;
                continue;
            }
            skip_blank = false;
            appended = false;
        }
        if at_start {
            at_start = false;
            start_line = line;
            if c == '#' || c == '!' {
                comment = true;
                continue;
            }
        }
        if c != '\n' && c != '\r' {
            if !comment {
                buf.push(c);
            }
            backslashes = if c == '\\' { backslashes + 1 } else { 0 };
            continue;
        }
        skip_lf = c == '\r';
        line += 1;
        if comment || buf.is_empty() {
            comment = false;
            at_start = true;
            skip_blank = true;
            buf.clear();
            backslashes = 0;
        } else if backslashes % 2 == 1 {
            buf.pop();
            backslashes = 0;
            skip_blank = true;
            appended = true;
        } else {
            out.push((start_line, std::mem::take(&mut buf)));
            at_start = true;
            skip_blank = true;
            backslashes = 0;
        }
    }
    if !comment && !buf.is_empty() {
        if backslashes % 2 == 1 {
            buf.pop();
        }
        out.push((start_line, buf));
    }
    out
}

/// `Properties.load0`: the key ends at the first unescaped `=`, `:` or blank; blanks and one
/// `=` or `:` after it are skipped.
fn split_key_value(l: &[char]) -> (&[char], &[char]) {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\x0c');
    let (mut key_len, mut value_start, mut has_sep, mut escaped) = (0, l.len(), false, false);
    while key_len < l.len() {
        let c = l[key_len];
        if (c == '=' || c == ':') && !escaped {
            value_start = key_len + 1;
            has_sep = true;
            break;
        } else if blank(c) && !escaped {
            value_start = key_len + 1;
            break;
        }
        escaped = c == '\\' && !escaped;
        key_len += 1;
    }
    while value_start < l.len() {
        let c = l[value_start];
        if !blank(c) {
            if !has_sep && (c == '=' || c == ':') {
                has_sep = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    (&l[..key_len], &l[value_start..])
}

/// `loadConvert`: `\t \n \r \f`, `\uXXXX` (UTF-16 code units, so a character outside the BMP is
/// a surrogate pair), and a backslash before any other character is dropped.
fn unescape(chars: &[char], line: usize, what: &str) -> Result<String, String> {
    let mut units: Vec<u16> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' {
            let mut b = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut b));
            continue;
        }
        let Some(&e) = chars.get(i) else { break };
        i += 1;
        let plain = match e {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\x0c',
            'u' => {
                let hex: String = chars[i..chars.len().min(i + 4)].iter().collect();
                let unit = (hex.len() == 4)
                    .then(|| u16::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| {
                        format!(
                            "line {line}: malformed \\uxxxx escape '\\u{hex}' in a {what} (Java \
                             needs four hex digits, e.g. \\u00e9)"
                        )
                    })?;
                i += 4;
                units.push(unit);
                continue;
            }
            other => other,
        };
        let mut b = [0u16; 2];
        units.extend_from_slice(plain.encode_utf16(&mut b));
    }
    String::from_utf16(&units).map_err(|_| {
        format!(
            "line {line}: a {what} has half of a UTF-16 surrogate pair (a \\uD800-\\uDFFF escape \
             without its partner)"
        )
    })
}

/// Writes `key=value` lines sorted by key, escaped as `Properties.store` does (with UTF-8 output,
/// so only control characters become `\uXXXX`).
pub fn encode(map: &HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut out = String::new();
    for k in keys {
        escape_into(&mut out, k, true);
        out.push('=');
        escape_into(&mut out, &map[k], false);
        out.push('\n');
    }
    out
}

/// `Properties.saveConvert`: every space of a key is escaped, only a leading one of a value.
fn escape_into(out: &mut String, s: &str, key: bool) {
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' ' if i == 0 || key => out.push_str("\\ "),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c < ' ' || c == '\x7f' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
}

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "decode",
        lua.create_function(|lua, (text, opts): (String, Option<Table>)| {
            let path = match &opts {
                Some(o) => o.get::<Option<String>>("path")?,
                None => None,
            };
            let entries = decode_entries(&text).map_err(|e| match &path {
                Some(p) => super::decode_error("ferry.properties.decode", format!("{p}: {e}")),
                None => super::decode_error("ferry.properties.decode", e),
            })?;
            let (t, lines) = (lua.create_table()?, lua.create_table()?);
            for e in entries {
                t.set(e.key.as_str(), e.value)?;
                lines.set(e.key, e.line)?;
            }
            Ok((t, lines))
        })?,
    )?;
    m.set(
        "encode",
        lua.create_function(|_, t: Table| {
            let mut map = HashMap::new();
            for pair in t.pairs::<String, mlua::Value>() {
                let (k, v) = pair?;
                map.insert(k, v.to_string()?);
            }
            Ok(encode(&map))
        })?,
    )?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn druid_style_properties_round_trip() {
        let text = "druid.metadata.storage.type=mysql\n\
                    druid.metadata.storage.connector.connectURI=jdbc:mysql://db.example.com:3306/druid\n\
                    # comment\n\
                    druid.storage.storageDirectory = var/druid/segments\n";
        let m = decode(text).unwrap();
        assert_eq!(m["druid.metadata.storage.type"], "mysql");
        assert_eq!(
            m["druid.metadata.storage.connector.connectURI"],
            "jdbc:mysql://db.example.com:3306/druid"
        );
        assert_eq!(m["druid.storage.storageDirectory"], "var/druid/segments");
        let again = decode(&encode(&m)).unwrap();
        assert_eq!(again, m);
    }

    /// Found by fuzz_properties_rejections_name_a_line_and_accepted_text_round_trips: the text
    /// was decoded as Windows-1252 (the java-properties crate's default), so UTF-8 came back
    /// as mojibake (`é` as `Ã©`, a byte order mark as `ï»¿`).
    #[test]
    fn regression_utf8_text_keeps_its_characters() {
        let m = decode("\u{feff}a=1\nname=café 日本 😀\n").unwrap();
        assert_eq!(m["name"], "café 日本 😀");
        // As Java's Properties.load(Reader): the mark is part of the first key.
        assert_eq!(m["\u{feff}a"], "1");
    }

    /// Found by fuzz_properties_written_map_reads_back_equal: control characters were written
    /// as `\u0` (too few digits), which no reader accepts back.
    #[test]
    fn regression_control_characters_are_written_with_four_digits() {
        let m = HashMap::from([(String::new(), "\u{0}x\u{1f}".to_string())]);
        assert_eq!(encode(&m), "=\\u0000x\\u001F\n");
        assert_eq!(decode(&encode(&m)).unwrap(), m);
    }

    /// Java reads `\uXXXX` as UTF-16 code units: a pair makes one character outside the BMP;
    /// half a pair cannot be UTF-8, so it is refused with its line.
    #[test]
    fn surrogate_pairs_and_malformed_escapes() {
        assert_eq!(decode("k=\\uD83D\\uDE00\n").unwrap()["k"], "😀");
        let err = decode("a=1\nk=\\uD83D\n").unwrap_err();
        assert!(
            err.starts_with("line 2:") && err.contains("surrogate"),
            "{err}"
        );
        let err = decode("a=1\n\nb=\\\n  c\\u12\n").unwrap_err();
        assert!(
            err.starts_with("line 3:") && err.contains("\\uxxxx"),
            "{err}"
        );
    }

    /// Java's LineReader: continuation lines drop their leading blanks, an empty line ends a
    /// continuation, comments do not continue, separators are `=`, `:` or blanks.
    #[test]
    fn java_line_rules() {
        let m = decode("a = one \\\n   two\nb:\\\n\nc\n# d \\\ne f g\r\nh\\ i\t=\t: j").unwrap();
        assert_eq!(m["a"], "one two");
        assert_eq!(m["b"], "");
        assert_eq!(m["c"], "");
        assert_eq!(m["e"], "f g");
        assert_eq!(m["h i"], ": j");
        let e = decode_entries("\n\r\n# x\n  k=v\n").unwrap();
        assert_eq!(e[0].line, 4);
    }
}

/// Fuzzing (issue 22): common.runtime.properties and sync.properties files with hand-made
/// mistakes. Every rejection names a line; whatever is accepted, and any map of strings, survives
/// encode then decode; line ends do not matter (Java's LineReader takes `\n`, `\r\n` and `\r`).
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::codec::mutate::{self, config, named_line, near_miss, value_text};
    use proptest::prelude::*;

    const KEYS: &[&str] = &[
        "druid.metadata.storage.type",
        "druid.metadata.storage.connector.connectURI",
        "druid.metadata.storage.connector.password",
        "druid.storage.type",
        "druid.storage.storageDirectory",
        "src_fe_host",
        "src_fe_query_port",
        "target_cluster_password",
        "include_data_list",
    ];
    const TOKENS: &[&str] = &[
        "\\u", "\\u12", "\\uD83D", "\\\\", "\\ ", "\\\n\n", "key=", "\\t",
    ];

    fn props_text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                6 => (
                    prop_oneof![
                        3 => prop::sample::select(KEYS).prop_map(str::to_string),
                        1 => "[a-zA-Z_][a-zA-Z0-9_.-]{0,16}",
                    ],
                    prop::sample::select(&["=", " = ", ":", " : ", " ", "\t"][..]),
                    value_text(),
                    prop::collection::vec("[a-zA-Z0-9,._-]{1,10}", 0..3),
                )
                    .prop_map(|(k, sep, v, more)| {
                        let mut line = format!("{k}{sep}{v}");
                        for m in more {
                            line.push_str(&format!(" \\\n    {m}"));
                        }
                        line + "\n"
                    }),
                1 => Just("\n".to_string()),
                1 => "[#!][ -~]{0,20}\n",
            ],
            0..10,
        )
        .prop_map(|lines| lines.concat())
    }

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => value_text(),
            1 => "[ \\t\\r\\n\\x0c\\x00-\\x1f=:#!\\\\a-z]{0,12}",
            1 => "\\PC{0,6}(\\u{10000}|\\u{1F600}|\\u{10FFFF})",
        ]
    }

    fn check_text(text: &str) -> Result<(), TestCaseError> {
        match decode(text) {
            Ok(m) => {
                let again = decode(&encode(&m));
                prop_assert_eq!(again.as_ref(), Ok(&m));
            }
            Err(e) => {
                let n = named_line(&e);
                prop_assert!(
                    n.is_some_and(|n| n >= 1 && n <= mutate::line_count(text)),
                    "error names no line of the text: {}",
                    e
                );
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(config(1500))]

        #[test]
        fn fuzz_properties_rejections_name_a_line_and_accepted_text_round_trips(
            text in near_miss(props_text(), TOKENS),
        ) {
            check_text(&text)?;
        }

        #[test]
        fn fuzz_properties_line_ends_do_not_change_the_map(text in near_miss(props_text(), TOKENS)) {
            let lf = text.replace("\r\n", "\n").replace('\r', "\n");
            prop_assert_eq!(decode(&lf.replace('\n', "\r\n")).ok(), decode(&lf).ok());
            prop_assert_eq!(decode(&lf.replace('\n', "\r")).ok(), decode(&lf).ok());
        }

        #[test]
        fn fuzz_properties_written_map_reads_back_equal(
            map in prop::collection::hash_map(any_text(), any_text(), 0..6),
        ) {
            let text = encode(&map);
            prop_assert_eq!(decode(&text), Ok(map), "text {:?}", text);
        }
    }
}
