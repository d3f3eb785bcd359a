//! The StarRocks double's DDL: StarRocks `CREATE TABLE` text (as `SHOW CREATE TABLE` prints it)
//! turned into MariaDB DDL, and the edits ALTER TABLE makes to the stored StarRocks text.
//!
//! Only what the tests use: plain column definitions, DUPLICATE/PRIMARY/UNIQUE/AGGREGATE KEY,
//! `PARTITION BY RANGE(col)` with `VALUES [("lo"), ("hi"))` or `VALUES LESS THAN ("hi")`,
//! DISTRIBUTED BY, PROPERTIES. Range partitions become MariaDB `RANGE COLUMNS` partitions, so
//! `SELECT ... PARTITION (p)` and `DELETE ... PARTITION (p)` work on the real server.

use regex::Regex;

/// One range partition of a StarRocks table.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub name: String,
    /// The exclusive upper bound as a SQL literal (`'2024-02-01'`) or `MAXVALUE`.
    pub upper: String,
    /// The `VALUES ...` text as written in the StarRocks DDL.
    pub values: String,
}

#[derive(Debug, Clone)]
pub struct Parsed {
    /// Everything between the parentheses after the table name.
    pub columns: String,
    /// The range partition column, when partitioned.
    pub partition_column: Option<String>,
    pub partitions: Vec<Partition>,
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

fn literal(v: &str) -> String {
    if v.eq_ignore_ascii_case("MAXVALUE") {
        return "MAXVALUE".into();
    }
    format!("'{}'", &v[1..v.len() - 1].replace('\'', "''"))
}

/// Partitions written in `text` (a whole DDL or one `ADD PARTITION` clause).
pub fn partitions(text: &str) -> Vec<Partition> {
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
    let by = Regex::new(r"(?is)PARTITION\s+BY\s+RANGE\s*\(\s*`?(\w+)`?\s*\)").expect("regex");
    let (partition_column, partitions) = match by.captures(tail) {
        Some(c) => (Some(c[1].to_string()), partitions(tail)),
        None => {
            if Regex::new(r"(?is)PARTITION\s+BY")
                .expect("regex")
                .is_match(tail)
            {
                return Err("the StarRocks double supports only PARTITION BY RANGE(col)".into());
            }
            (None, Vec::new())
        }
    };
    Ok(Parsed {
        columns,
        partition_column,
        partitions,
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
        let parts: Vec<String> = p
            .partitions
            .iter()
            .map(|x| format!("PARTITION `{}` VALUES LESS THAN ({})", x.name, x.upper))
            .collect();
        out.push_str(&format!(
            " PARTITION BY RANGE COLUMNS(`{col}`) ({})",
            parts.join(", ")
        ));
    }
    Ok(out)
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
    let re = partition_re();
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
