//! `ferry.ini`: INI files as Seafile (Python's configparser) reads them: `[section]`, `key = value`
//! or `key: value`, `#`/`;` comment lines, indented continuation lines. Order is kept so a
//! rewritten `seafile.conf` keeps its layout.

use mlua::{Lua, Table, Value};

use crate::runtime::registry::{FnDoc, ModuleDef, Opt, Param};

pub static MODULE: ModuleDef = ModuleDef {
    name: "ini",
    summary: "INI decode/encode in configparser's dialect, keeping section and key order.",
    functions: &[
        FnDoc {
            name: "decode",
            signature: "ferry.ini.decode(text) -> {section = {key = value}}",
            params: &[Param::new("text", "string")],
            options: &[],
            returns: "table<string, table<string, string>>",
            doc: "Parses INI text into a table of sections. Keys before any section go to \
                  section \"\". Raises invalid_input with the line number on malformed lines.",
            example: Some(
                "local c = ferry.ini.decode(\"[block_backend]\\nname = s3\\nbucket: b1\\n\")\nassert(c.block_backend.name == \"s3\" and c.block_backend.bucket == \"b1\")",
            ),
        },
        FnDoc {
            name: "decode_ordered",
            signature: "ferry.ini.decode_ordered(text [, {strict = false}]) -> {{name, entries = {{key, value}...}}...}",
            params: &[Param::new("text", "string"), Param::opt("opts", "table")],
            options: &[Opt::def("strict", "boolean", "false")
                .doc("refuse a repeated section or option, as configparser does")],
            returns: "{name: string, entries: [string, string][]}[]",
            doc: "Parses INI text keeping the order of sections and keys. strict = true refuses a \
                  repeated section and an option set twice in a section (names compared \
                  case-insensitively), as Python's configparser does.",
            example: Some(
                "local s = ferry.ini.decode_ordered(\"[b]\\nx=1\\n[a]\\ny=2\\n\")\nassert(s[1].name == \"b\" and s[2].entries[1][1] == \"y\")",
            ),
        },
        FnDoc {
            name: "encode",
            signature: "ferry.ini.encode(t) -> text",
            params: &[Param::new("t", "table")],
            options: &[],
            returns: "string",
            doc: "Writes INI text from either form (the ordered form keeps its order; the keyed form is sorted).",
            example: Some("assert(ferry.ini.encode({s = {k = \"v\"}}) == \"[s]\\nk = v\\n\")"),
        },
    ],
    classes: &[],
    constants: &[],
    build,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

pub fn decode(text: &str) -> Result<Vec<Section>, String> {
    decode_opts(text, false)
}

/// `strict`: as Python's `configparser.ConfigParser(strict=True)` (its default), a section named
/// twice is an error (`DuplicateSectionError`), and so is an option set twice in one section,
/// names compared case-insensitively as its `optionxform` lower-cases them
/// (`DuplicateOptionError`), and an option before any section or a leading byte order mark
/// (`MissingSectionHeaderError`). Without it, repeats continue the section and the last value
/// wins, options before any section go to section "", and a leading BOM is skipped. Either way
/// `\r\n`, `\n` and a lone `\r` end a line, and `[]` is refused.
pub fn decode_opts(text: &str, strict: bool) -> Result<Vec<Section>, String> {
    let mut sections: Vec<Section> = Vec::new();
    let mut current: Option<usize> = None;
    let mut last_key: Option<(usize, usize)> = None;
    // Line ends as configparser reads a file (universal newlines): `\r\n`, `\n`, and a lone
    // `\r` too, so a file saved with old Mac line ends is not one long line.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = match text.strip_prefix('\u{feff}') {
        // Python opens seafile.conf as plain UTF-8, so the mark stays and the first header does
        // not parse (MissingSectionHeaderError): say what the invisible character is.
        Some(_) if strict => {
            return Err(
                "line 1: the file starts with a UTF-8 byte order mark, which \
                        configparser does not skip (MissingSectionHeaderError); save it as UTF-8 \
                        without BOM"
                    .to_string(),
            );
        }
        Some(rest) => rest,
        None => text.as_str(),
    };
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let trimmed = trim(raw);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if indented && let Some((si, ki)) = last_key {
            let v = &mut sections[si].entries[ki].1;
            v.push('\n');
            v.push_str(trimmed);
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| format!("line {line_no}: section header without ']': {trimmed}"))
                .map(trim)?
                .to_string();
            if name.is_empty() {
                // configparser's SECTCRE needs a name: `[]` is no header to it.
                return Err(format!(
                    "line {line_no}: section header without a name: {trimmed}"
                ));
            }
            current = Some(match sections.iter().position(|s| s.name == name) {
                Some(_) if strict => {
                    return Err(format!(
                        "line {line_no}: section [{name}] already exists (configparser: DuplicateSectionError)"
                    ));
                }
                Some(i) => i,
                None => {
                    sections.push(Section {
                        name,
                        entries: Vec::new(),
                    });
                    sections.len() - 1
                }
            });
            last_key = None;
            continue;
        }
        let sep = trimmed
            .find(['=', ':'])
            .ok_or_else(|| format!("line {line_no}: expected 'key = value', got: {trimmed}"))?;
        let key = trim(&trimmed[..sep]).to_string();
        let value = trim(&trimmed[sep + 1..]).to_string();
        if key.is_empty() {
            return Err(format!("line {line_no}: empty key"));
        }
        let si = match current {
            Some(i) => i,
            None if strict => {
                return Err(format!(
                    "line {line_no}: option '{key}' comes before the first [section] \
                     (configparser: MissingSectionHeaderError)"
                ));
            }
            None => {
                sections.push(Section {
                    name: String::new(),
                    entries: Vec::new(),
                });
                current = Some(sections.len() - 1);
                sections.len() - 1
            }
        };
        if strict
            && let Some((k, _)) = sections[si]
                .entries
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&key))
        {
            return Err(format!(
                "line {line_no}: option '{key}' already set in [{}] as '{k}' (configparser: \
                 DuplicateOptionError; option names are case-insensitive)",
                sections[si].name
            ));
        }
        let entries = &mut sections[si].entries;
        let ki = match entries.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                entries[i].1 = value;
                i
            }
            None => {
                entries.push((key, value));
                entries.len() - 1
            }
        };
        last_key = Some((si, ki));
    }
    Ok(sections)
}

/// Whitespace, and U+FEFF (a byte order mark, or the zero-width no-break space it once was):
/// invisible, and a BOM at the start of what encode writes would be taken for the file's.
fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

pub fn encode(sections: &[Section]) -> String {
    let mut out = String::new();
    for (i, s) in sections.iter().enumerate() {
        if !s.name.is_empty() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("[{}]\n", s.name));
        }
        for (k, v) in &s.entries {
            out.push_str(&format!("{k} = {}\n", v.replace('\n', "\n    ")));
        }
    }
    out
}

fn sections_from_lua(t: &Table) -> mlua::Result<Vec<Section>> {
    let mut out = Vec::new();
    if t.raw_len() > 0 {
        for s in t.sequence_values::<Table>() {
            let s = s?;
            let name: String = s.get::<Option<String>>("name")?.unwrap_or_default();
            let mut entries = Vec::new();
            if let Some(e) = s.get::<Option<Table>>("entries")? {
                for pair in e.sequence_values::<Table>() {
                    let pair = pair?;
                    entries.push((pair.get::<String>(1)?, pair.get::<Value>(2)?.to_string()?));
                }
            }
            out.push(Section { name, entries });
        }
    } else {
        for pair in t.pairs::<String, Table>() {
            let (name, keys) = pair?;
            let mut entries: Vec<(String, String)> = keys
                .pairs::<String, Value>()
                .map(|kv| kv.and_then(|(k, v)| Ok((k, v.to_string()?))))
                .collect::<mlua::Result<_>>()?;
            entries.sort();
            out.push(Section { name, entries });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(out)
}

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "decode",
        lua.create_function(|lua, text: String| {
            let sections = decode(&text).map_err(|e| super::decode_error("ferry.ini.decode", e))?;
            let t = lua.create_table()?;
            for s in sections {
                let st = lua.create_table()?;
                for (k, v) in s.entries {
                    st.set(k, v)?;
                }
                t.set(s.name, st)?;
            }
            Ok(t)
        })?,
    )?;
    m.set(
        "decode_ordered",
        lua.create_function(|lua, (text, opts): (String, Option<Table>)| {
            crate::runtime::options::check_optional(opts.as_ref(), &MODULE, "decode_ordered")?;
            let strict = match &opts {
                Some(t) => t.get::<Option<bool>>("strict")?.unwrap_or(false),
                None => false,
            };
            let sections = decode_opts(&text, strict)
                .map_err(|e| super::decode_error("ferry.ini.decode_ordered", e))?;
            let t = lua.create_table()?;
            for (i, s) in sections.into_iter().enumerate() {
                let st = lua.create_table()?;
                st.set("name", s.name)?;
                let entries = lua.create_table()?;
                for (j, (k, v)) in s.entries.into_iter().enumerate() {
                    entries.raw_set(j + 1, lua.create_sequence_from([k, v])?)?;
                }
                st.set("entries", entries)?;
                t.raw_set(i + 1, st)?;
            }
            Ok(t)
        })?,
    )?;
    m.set(
        "encode",
        lua.create_function(|_, t: Table| Ok(encode(&sections_from_lua(&t)?)))?,
    )?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seafile_conf_round_trip_keeps_order() {
        let text = "[fileserver]\nport = 8082\n\n# backends\n[commit_object_backend]\nname = s3\nbucket = my-commit-objects\nkey_id = AKIA\n\n[memcached]\nmemcached_options = --SERVER=localhost\n  --POOL-MIN=10\n";
        let s = decode(text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].name, "commit_object_backend");
        assert_eq!(
            s[1].entries[1],
            ("bucket".into(), "my-commit-objects".into())
        );
        assert_eq!(s[2].entries[0].1, "--SERVER=localhost\n--POOL-MIN=10");
        assert_eq!(decode(&encode(&s)).unwrap(), s);
    }

    #[test]
    fn strict_refuses_repeats_as_configparser() {
        assert!(
            decode_opts("[a]\nx=1\n[a]\ny=2\n", true)
                .unwrap_err()
                .contains("DuplicateSectionError")
        );
        assert!(
            decode_opts("[a]\nName=1\nname=2\n", true)
                .unwrap_err()
                .contains("line 3")
        );
        assert_eq!(
            decode_opts("[a]\nx=1\n[a]\nx=2\n", false).unwrap()[0].entries[0].1,
            "2"
        );
    }

    /// Found by fuzz_ini_rejections_name_a_line_and_accepted_text_round_trips: `[]` made a
    /// section "" that encode wrote without a header, so its options joined the section before.
    #[test]
    fn regression_empty_section_name_is_refused() {
        let err = decode("[a]\nx = 1\n[]\ny = 2\n").unwrap_err();
        assert!(
            err.contains("line 3") && err.contains("without a name"),
            "{err}"
        );
        assert!(decode("[ ]\n").unwrap_err().contains("line 1"));
    }

    /// Found by fuzz_ini_line_ends_do_not_change_the_sections: with old Mac line ends (`\r`)
    /// the whole file was one line, so `[fileserver]\r[fileserver]` was one section of that name.
    #[test]
    fn regression_lone_cr_ends_a_line() {
        let s = decode("[fileserver]\r[fileserver]\r").unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "fileserver");
        let s = decode("[a]\rx = 1\ry = 2\r").unwrap();
        assert_eq!(
            s[0].entries,
            vec![("x".into(), "1".into()), ("y".into(), "2".into())]
        );
        assert!(
            decode_opts("[a]\rx=1\r[a]\r", true)
                .unwrap_err()
                .contains("line 3")
        );
    }

    /// Found by fuzz_ini_rejections_name_a_line_and_accepted_text_round_trips (20 000 cases):
    /// after two BOMs the second stayed in the first key, which encode then wrote at the start
    /// of the file, where it reads as the file's BOM.
    #[test]
    fn regression_second_byte_order_mark_is_not_part_of_a_key() {
        let s = decode("\u{feff}\u{feff}x = 1\n\u{feff}y = 2\n").unwrap();
        assert_eq!(
            s[0].entries,
            vec![("x".into(), "1".into()), ("y".into(), "2".into())]
        );
        assert_eq!(decode(&encode(&s)).unwrap(), s);
        assert!(
            decode("\u{feff}\u{feff}[_key = \n")
                .unwrap_err()
                .contains("line 1")
        );
    }

    #[test]
    fn byte_order_mark_is_skipped_but_refused_in_strict_mode() {
        assert_eq!(decode("\u{feff}[a]\nx=1\n").unwrap()[0].name, "a");
        let err = decode_opts("\u{feff}[a]\nx=1\n", true).unwrap_err();
        assert!(
            err.contains("line 1") && err.contains("byte order mark"),
            "{err}"
        );
    }

    #[test]
    fn strict_refuses_options_before_any_section_naming_the_line() {
        let err = decode_opts("# c\nport = 1\n[a]\n", true).unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("MissingSectionHeaderError"),
            "{err}"
        );
        assert_eq!(decode("port = 1\n").unwrap()[0].name, "");
    }

    #[test]
    fn malformed_lines_name_the_line() {
        assert!(decode("[a]\nnot a pair\n").unwrap_err().contains("line 2"));
        assert!(decode("[a\n").unwrap_err().contains("line 1"));
    }
}

/// Fuzzing (issue 22): seafile.conf-like files with hand-made mistakes. Every rejection names a
/// line of the file; everything accepted survives encode then decode; line ends do not matter.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::codec::mutate::{self, config, named_line, near_miss, value_text};
    use proptest::prelude::*;

    const SECTIONS: &[&str] = &[
        "fileserver",
        "block_backend",
        "commit_object_backend",
        "fs_object_backend",
        "DEFAULT",
        "database",
        "memcached",
        "storage",
    ];
    const KEYS: &[&str] = &[
        "name",
        "bucket",
        "key_id",
        "key",
        "host",
        "port",
        "use_https",
        "region",
        "path_style_request",
        "memcached_options",
        "Name",
        "BUCKET",
    ];
    const TOKENS: &[&str] = &[
        "[x]",
        "[DEFAULT]",
        "[]",
        "[ ]",
        "key",
        "key = v",
        "  ",
        "\n[a",
    ];

    fn name(pool: &'static [&'static str], other: &'static str) -> BoxedStrategy<String> {
        prop_oneof![
            3 => prop::sample::select(pool).prop_map(str::to_string),
            1 => other,
        ]
        .boxed()
    }

    fn entry_line() -> impl Strategy<Value = String> {
        (
            name(KEYS, "[a-zA-Z_][a-zA-Z0-9_.-]{0,10}"),
            prop::sample::select(&[" = ", "=", ": ", ":", " =  ", "\t= "][..]),
            value_text(),
            prop::collection::vec("[a-zA-Z0-9=_-]{1,12}", 0..3),
        )
            .prop_map(|(k, sep, v, more)| {
                let mut line = format!("{k}{sep}{v}\n");
                for m in more {
                    line.push_str(&format!("    {m}\n"));
                }
                line
            })
    }

    /// A seafile.conf as people write it: sections, options, comments, blank lines.
    fn conf_text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            (
                name(SECTIONS, "[a-z_]{1,12}"),
                prop::collection::vec(
                    prop_oneof![
                        6 => entry_line(),
                        1 => Just("\n".to_string()),
                        1 => "[#;] [ -~]{0,20}\n",
                    ],
                    0..6,
                ),
            ),
            0..5,
        )
        .prop_map(|sections| {
            let mut out = String::new();
            for (name, lines) in sections {
                out.push_str(&format!("[{name}]\n"));
                for l in lines {
                    out.push_str(&l);
                }
            }
            out
        })
    }

    fn check(text: &str, strict: bool) -> Result<(), TestCaseError> {
        match decode_opts(text, strict) {
            Ok(s) => {
                let again = decode_opts(&encode(&s), strict);
                prop_assert_eq!(again.as_ref(), Ok(&s), "encode of {:?}", s);
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

    /// Data a configparser file can hold: names and keys without separators or line ends, values
    /// whose lines are trimmed and not comments.
    fn sections_data() -> impl Strategy<Value = Vec<Section>> {
        let piece = "[a-zA-Z0-9._%=:/-]([a-zA-Z0-9 ._%=:/-]{0,10}[a-zA-Z0-9._%=:/-])?";
        let value = (
            prop_oneof![Just(String::new()), piece],
            prop::collection::vec(piece, 0..3),
        )
            .prop_map(|(first, more)| {
                std::iter::once(first)
                    .chain(more)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        let entries = prop::collection::btree_map("[a-z_][a-z0-9_.-]{0,10}", value, 0..5);
        (
            prop::option::of(entries.clone()),
            prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_ .-]{0,10}[a-z]", entries, 0..5),
        )
            .prop_map(|(head, named)| {
                let mut out = Vec::new();
                if let Some(h) = head.filter(|h| !h.is_empty()) {
                    out.push(Section {
                        name: String::new(),
                        entries: h.into_iter().collect(),
                    });
                }
                for (name, entries) in named {
                    out.push(Section {
                        name,
                        entries: entries.into_iter().collect(),
                    });
                }
                out
            })
    }

    proptest! {
        #![proptest_config(config(1500))]

        #[test]
        fn fuzz_ini_rejections_name_a_line_and_accepted_text_round_trips(
            text in near_miss(conf_text(), TOKENS),
        ) {
            check(&text, false)?;
            check(&text, true)?;
        }

        #[test]
        fn fuzz_ini_line_ends_do_not_change_the_sections(text in near_miss(conf_text(), TOKENS)) {
            let lf = text.replace("\r\n", "\n").replace('\r', "\n");
            prop_assert_eq!(decode(&text).ok(), decode(&lf).ok());
            prop_assert_eq!(decode(&lf.replace('\n', "\r\n")).ok(), decode(&lf).ok());
            prop_assert_eq!(decode(&lf.replace('\n', "\r")).ok(), decode(&lf).ok());
        }

        #[test]
        fn fuzz_ini_written_data_reads_back_equal(data in sections_data()) {
            let text = encode(&data);
            prop_assert_eq!(decode(&text), Ok(data.clone()), "text {:?}", text);
            if data.iter().all(|s| !s.name.is_empty()) {
                prop_assert_eq!(decode_opts(&text, true), Ok(data), "strict, text {:?}", text);
            }
        }
    }
}
