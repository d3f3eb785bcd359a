//! `ferry.ini`: INI files as Seafile (Python's configparser) reads them: `[section]`, `key = value`
//! or `key: value`, `#`/`;` comment lines, indented continuation lines. Order is kept so a
//! rewritten `seafile.conf` keeps its layout.

use mlua::{Lua, Table, Value};

use crate::runtime::registry::{FnDoc, ModuleDef};

pub static MODULE: ModuleDef = ModuleDef {
    name: "ini",
    summary: "INI decode/encode in configparser's dialect, keeping section and key order.",
    functions: &[
        FnDoc {
            name: "decode",
            signature: "ferry.ini.decode(text) -> {section = {key = value}}",
            doc: "Parses INI text into a table of sections. Keys before any section go to \
                  section \"\". Raises invalid_input with the line number on malformed lines.",
            example: Some(
                "local c = ferry.ini.decode(\"[block_backend]\\nname = s3\\nbucket: b1\\n\")\nassert(c.block_backend.name == \"s3\" and c.block_backend.bucket == \"b1\")",
            ),
        },
        FnDoc {
            name: "decode_ordered",
            signature: "ferry.ini.decode_ordered(text [, {strict = false}]) -> {{name, entries = {{key, value}...}}...}",
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
            doc: "Writes INI text from either form (the ordered form keeps its order; the keyed form is sorted).",
            example: Some("assert(ferry.ini.encode({s = {k = \"v\"}}) == \"[s]\\nk = v\\n\")"),
        },
    ],
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
/// (`DuplicateOptionError`). Without it, repeats continue the section and the last value wins.
pub fn decode_opts(text: &str, strict: bool) -> Result<Vec<Section>, String> {
    let mut sections: Vec<Section> = Vec::new();
    let mut current: Option<usize> = None;
    let mut last_key: Option<(usize, usize)> = None;
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let trimmed = raw.trim();
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
                .ok_or_else(|| format!("line {line_no}: section header without ']': {trimmed}"))?
                .trim()
                .to_string();
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
        let key = trimmed[..sep].trim().to_string();
        let value = trimmed[sep + 1..].trim().to_string();
        if key.is_empty() {
            return Err(format!("line {line_no}: empty key"));
        }
        let si = match current {
            Some(i) => i,
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

    #[test]
    fn malformed_lines_name_the_line() {
        assert!(decode("[a]\nnot a pair\n").unwrap_err().contains("line 2"));
        assert!(decode("[a\n").unwrap_err().contains("line 1"));
    }
}
