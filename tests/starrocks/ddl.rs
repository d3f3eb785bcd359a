//! The StarRocks double's DDL: StarRocks `CREATE TABLE` text (as `SHOW CREATE TABLE` prints it)
//! turned into MariaDB DDL, and the edits ALTER TABLE makes to the stored StarRocks text.
//!
//! Only what the tests use: plain column definitions, DUPLICATE/PRIMARY/UNIQUE/AGGREGATE KEY,
//! `PARTITION BY RANGE(col)` with `VALUES [("lo"), ("hi"))` or `VALUES LESS THAN ("hi")`,
//! `PARTITION BY LIST(col)` with `VALUES IN ("a", ...)`, automatic partitioning
//! (`PARTITION BY date_trunc('unit', col)`, `PARTITION BY (col)`: see auto_partition.rs),
//! DISTRIBUTED BY, PROPERTIES. Partitions become MariaDB `RANGE COLUMNS` / `LIST COLUMNS`
//! partitions, so `SELECT ... PARTITION (p)` and `DELETE ... PARTITION (p)` work on the real server.

use regex::Regex;

/// One range or list partition of a StarRocks table.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub name: String,
    /// Range: the exclusive upper bound as a SQL literal (`'2024-02-01'`) or `MAXVALUE`.
    /// List: the `IN` values as SQL literals (`'a', 'b'`).
    pub upper: String,
    /// The `VALUES ...` text as written in the StarRocks DDL.
    pub values: String,
}

/// How a table is partitioned. The automatic kinds are StarRocks' expression partitioning
/// (docs `table_design/data_distribution/expression_partitioning.md`): `PARTITION BY
/// date_trunc('month', col)` (or `RANGE(date_trunc(...))`) and `PARTITION BY (col)` / `PARTITION
/// BY col`; the CREATE TABLE names no partition and a load creates the ones its rows need
/// (`AnalyzerUtils.getNonExistPartitionAddClause`).
#[derive(Debug, Clone, PartialEq)]
pub enum Scheme {
    None,
    Range,
    List,
    /// date_trunc granularity: day, month, year.
    AutoRange(String),
    AutoList,
}

impl Scheme {
    pub fn automatic(&self) -> bool {
        matches!(self, Scheme::AutoRange(_) | Scheme::AutoList)
    }
    pub fn list(&self) -> bool {
        matches!(self, Scheme::List | Scheme::AutoList)
    }
}

#[derive(Debug, Clone)]
pub struct Parsed {
    /// Everything between the parentheses after the table name.
    pub columns: String,
    /// The partition column, when partitioned.
    pub partition_column: Option<String>,
    pub partitions: Vec<Partition>,
    pub scheme: Scheme,
}

/// Walks `s` from `from`, calling `visit(i, byte, depth)` for every byte outside quoted text
/// (`"`, `'`, backquotes, with backslash escapes), with the parenthesis depth after that byte;
/// stops when `visit` returns true and gives that offset.
fn scan(s: &str, from: usize, mut visit: impl FnMut(usize, u8, i32) -> bool) -> Option<usize> {
    let b = s.as_bytes();
    let (mut depth, mut quote) = (0i32, None::<u8>);
    let mut i = from;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 1;
            } else if c == q {
                quote = None;
            }
        } else if c == b'"' || c == b'\'' || c == b'`' {
            quote = Some(c);
        } else {
            match c {
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
            if visit(i, c, depth) {
                return Some(i);
            }
        }
        i += 1;
    }
    None
}

/// Finds the byte offset of the parenthesis closing the one at `open`, skipping quoted text.
pub fn matching_paren(s: &str, open: usize) -> Option<usize> {
    scan(s, open, |_, c, depth| c == b')' && depth == 0)
}

fn partition_re() -> Regex {
    Regex::new(
        r#"(?is)PARTITION\s+`?(\w+)`?\s+(VALUES\s+(?:\[\s*\(\s*("[^"]*"|'[^']*')\s*\)\s*,\s*\(\s*("[^"]*"|'[^']*'|MAXVALUE)\s*\)\s*\)|LESS\s+THAN\s*\(\s*("[^"]*"|'[^']*'|MAXVALUE)\s*\)|LESS\s+THAN\s+MAXVALUE))"#,
    )
    .expect("partition regex")
}

fn list_partition_re() -> Regex {
    Regex::new(r#"(?is)PARTITION\s+`?(\w+)`?\s+(VALUES\s+IN\s*\(((?:[^()"']|"[^"]*"|'[^']*'|\([^()]*\))*)\))"#)
        .expect("list partition regex")
}

/// `("a", "b")` or `(("a"), ("b"))` → `'a', 'b'` (single-column lists only).
fn in_literals(inner: &str) -> String {
    Regex::new(r#""([^"]*)"|'([^']*)'"#)
        .expect("regex")
        .captures_iter(inner)
        .map(|c| {
            let v = c
                .get(1)
                .or_else(|| c.get(2))
                .map(|m| m.as_str())
                .unwrap_or("");
            format!("'{}'", v.replace('\'', "''"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn literal(v: &str) -> String {
    if v.eq_ignore_ascii_case("MAXVALUE") {
        return "MAXVALUE".into();
    }
    format!("'{}'", &v[1..v.len() - 1].replace('\'', "''"))
}

/// Partitions written in `text` (a whole DDL or one `ADD PARTITION` clause).
pub fn partitions(text: &str) -> Vec<Partition> {
    if list_partition_re().is_match(text) {
        return list_partition_re()
            .captures_iter(text)
            .map(|c| Partition {
                name: c[1].to_string(),
                upper: in_literals(&c[3]),
                values: c[2].to_string(),
            })
            .collect();
    }
    partition_re()
        .captures_iter(text)
        .map(|c| {
            let upper = c
                .get(4)
                .or_else(|| c.get(5))
                .map(|m| literal(m.as_str()))
                .unwrap_or_else(|| "MAXVALUE".into());
            Partition {
                name: c[1].to_string(),
                upper,
                values: c[2].to_string(),
            }
        })
        .collect()
}

pub fn parse(sr: &str) -> Result<Parsed, String> {
    let open = sr.find('(').ok_or("CREATE TABLE without a column list")?;
    let close = matching_paren(sr, open).ok_or("unbalanced parentheses in CREATE TABLE")?;
    let columns = sr[open + 1..close].to_string();
    let tail = &sr[close + 1..];
    let rx = |p: &str| Regex::new(p).expect("regex");
    let (scheme, partition_column) = if let Some(c) = rx(
        r"(?is)PARTITION\s+BY\s+(?:RANGE\s*\(\s*)?date_trunc\s*\(\s*'(\w+)'\s*,\s*`?(\w+)`?\s*\)",
    )
    .captures(tail)
    {
        let unit = c[1].to_lowercase();
        if !["day", "month", "year"].contains(&unit.as_str()) {
            return Err(format!(
                "the StarRocks double does date_trunc by day, month or year, not {unit}"
            ));
        }
        (Scheme::AutoRange(unit), Some(c[2].to_string()))
    } else if let Some(c) = rx(r"(?is)PARTITION\s+BY\s+RANGE\s*\(\s*`?(\w+)`?\s*\)").captures(tail)
    {
        (Scheme::Range, Some(c[1].to_string()))
    } else if let Some(c) = rx(r"(?is)PARTITION\s+BY\s+LIST\s*\(\s*`?(\w+)`?\s*\)").captures(tail) {
        (Scheme::List, Some(c[1].to_string()))
    } else if let Some(c) = rx(r"(?is)PARTITION\s+BY\s+\(?\s*`?(\w+)`?\s*\)?").captures(tail) {
        (Scheme::AutoList, Some(c[1].to_string()))
    } else if rx(r"(?is)PARTITION\s+BY").is_match(tail) {
        return Err("the StarRocks double cannot read this PARTITION BY".into());
    } else {
        (Scheme::None, None)
    };
    let partitions = match scheme {
        Scheme::Range | Scheme::List => partitions(tail),
        _ => Vec::new(),
    };
    Ok(Parsed {
        columns,
        partition_column,
        partitions,
        scheme,
    })
}

/// MariaDB DDL for the StarRocks table `sr` created as `db`.`table` (db already mapped).
pub fn to_mariadb(sr: &str, db: &str, table: &str) -> Result<String, String> {
    let p = parse(sr)?;
    // Bitmap indexes are StarRocks-only; MariaDB gets the columns without them.
    let bitmap = Regex::new(r"(?is)^\s*INDEX\s.*USING\s+BITMAP").expect("regex");
    let columns: Vec<&str> = split_top_level(&p.columns)
        .into_iter()
        .filter(|c| !bitmap.is_match(c))
        .collect();
    let mut out = format!(
        "CREATE TABLE `{db}`.`{table}` ({}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        columns.join(",")
    );
    if let Some(col) = &p.partition_column {
        out.push_str(&mariadb_partitioning(&p.scheme, col, &p.partitions));
    }
    Ok(out)
}

/// Hidden MariaDB partitions of an automatic table: rows waiting for their partition (`_sr_rest`)
/// and the ranges between created partitions (`_sr_gap_N`). SHOW PARTITIONS never lists them.
pub const HIDDEN: &str = "_sr_";

/// The MariaDB `PARTITION BY ...` clause for a StarRocks partitioning and its partitions (for an
/// automatic range table, `parts` carry `upper` and a `values` of `VALUES [("lo"), ("hi"))`).
pub fn mariadb_partitioning(scheme: &Scheme, col: &str, parts: &[Partition]) -> String {
    let mut out: Vec<String> = Vec::new();
    match scheme {
        Scheme::Range => {
            for x in parts {
                out.push(format!(
                    "PARTITION `{}` VALUES LESS THAN ({})",
                    x.name, x.upper
                ));
            }
        }
        Scheme::AutoRange(_) => {
            let lower = |x: &Partition| {
                Regex::new(r#"\[\s*\(\s*"([^"]*)""#)
                    .expect("regex")
                    .captures(&x.values)
                    .map(|c| format!("'{}'", &c[1]))
            };
            let mut prev: Option<String> = None;
            for (i, x) in parts.iter().enumerate() {
                if let Some(lo) = lower(x)
                    && prev.as_deref() != Some(lo.as_str())
                {
                    out.push(format!(
                        "PARTITION `{HIDDEN}gap_{i}` VALUES LESS THAN ({lo})"
                    ));
                }
                out.push(format!(
                    "PARTITION `{}` VALUES LESS THAN ({})",
                    x.name, x.upper
                ));
                prev = Some(x.upper.clone());
            }
            out.push(format!(
                "PARTITION `{HIDDEN}rest` VALUES LESS THAN (MAXVALUE)"
            ));
        }
        Scheme::List | Scheme::AutoList => {
            for x in parts {
                out.push(format!("PARTITION `{}` VALUES IN ({})", x.name, x.upper));
            }
            if *scheme == Scheme::AutoList {
                out.push(format!("PARTITION `{HIDDEN}rest` DEFAULT"));
            }
        }
        Scheme::None => return String::new(),
    }
    let kind = if scheme.list() { "LIST" } else { "RANGE" };
    format!(" PARTITION BY {kind} COLUMNS(`{col}`) ({})", out.join(", "))
}

/// The stored StarRocks text with a column definition added at the end of the column list.
pub fn add_column(sr: &str, def: &str) -> Result<String, String> {
    let open = sr.find('(').ok_or("no column list")?;
    let close = matching_paren(sr, open).ok_or("unbalanced")?;
    let before = sr[..close].trim_end();
    Ok(format!("{before},\n  {def}\n{}", &sr[close..]))
}

/// The stored StarRocks text with the column `name` removed from the column list.
pub fn drop_column(sr: &str, name: &str) -> Result<String, String> {
    let open = sr.find('(').ok_or("no column list")?;
    let close = matching_paren(sr, open).ok_or("unbalanced")?;
    let cols: Vec<&str> = split_top_level(&sr[open + 1..close]);
    let kept: Vec<String> = cols
        .into_iter()
        .filter(|c| {
            let t = c.trim();
            !(t.starts_with(&format!("`{name}`")) || t.split_whitespace().next() == Some(name))
        })
        .map(|c| format!("\n  {}", c.trim()))
        .collect();
    Ok(format!(
        "{}{}\n{}",
        &sr[..open + 1],
        kept.join(","),
        &sr[close..]
    ))
}

/// Splits on commas outside parentheses and quotes.
pub fn split_top_level(s: &str) -> Vec<&str> {
    let (mut start, mut out) = (0usize, Vec::new());
    scan(s, 0, |i, c, depth| {
        if c == b',' && depth == 0 {
            out.push(&s[start..i]);
            start = i + 1;
        }
        false
    });
    if !s[start..].trim().is_empty() {
        out.push(&s[start..]);
    }
    out
}

/// The stored StarRocks text with a partition clause (`p VALUES ...`) added to the partition list.
pub fn add_partition(sr: &str, clause: &str) -> Result<String, String> {
    let last = partitions(sr)
        .last()
        .cloned()
        .ok_or("the table has no range partitions")?;
    let at = sr
        .find(&last.values)
        .map(|i| i + last.values.len())
        .ok_or("cannot place the partition")?;
    Ok(format!(
        "{},\nPARTITION {}{}",
        &sr[..at],
        clause.trim(),
        &sr[at..]
    ))
}

/// The stored StarRocks text without partition `name`.
pub fn drop_partition(sr: &str, name: &str) -> String {
    let re = if list_partition_re().is_match(sr) {
        list_partition_re()
    } else {
        partition_re()
    };
    let mut out = sr.to_string();
    if let Some(m) = re.captures_iter(sr).find(|c| &c[1] == name) {
        let whole = m.get(0).expect("match");
        let (mut s, mut e) = (whole.start(), whole.end());
        // Take one neighbouring comma with the clause.
        let after = sr[e..].trim_start();
        if after.starts_with(',') {
            e = sr.len() - after.len() + 1;
        } else if let Some(i) = sr[..s].rfind(',')
            && sr[i + 1..s].trim().is_empty()
        {
            s = i;
        }

        out = format!("{}{}", &sr[..s], &sr[e..]);
    }
    out
}

/// The stored StarRocks text with one table property set (replaced or added to PROPERTIES).
pub fn set_property(sr: &str, key: &str, value: &str) -> String {
    let pat = Regex::new(&format!(r#""{}"\s*=\s*"[^"]*""#, regex::escape(key))).expect("regex");
    let kv = format!("\"{key}\" = \"{value}\"");
    if pat.is_match(sr) {
        return pat.replace(sr, kv.as_str()).into_owned();
    }
    match Regex::new(r"(?is)PROPERTIES\s*\(").expect("regex").find(sr) {
        Some(m) => format!("{}\n{kv},{}", &sr[..m.end()], &sr[m.end()..]),
        None => format!("{}\nPROPERTIES (\n{kv}\n)", sr.trim_end()),
    }
}
