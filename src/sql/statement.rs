//! SQL text helpers: `?` placeholders rewritten for PostgreSQL, and whether a statement only
//! reads (it runs under --dry-run) or changes something (it is reported instead).

/// Rewrites `?` placeholders to `$1, $2, ...` outside quotes and comments.
pub fn to_dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                out.push(c);
                i += 1;
                while i < chars.len() {
                    out.push(chars[i]);
                    if chars[i] == c {
                        if i + 1 < chars.len() && chars[i + 1] == c {
                            out.push(c);
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    out.push(chars[i]);
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    out.push(chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    out.push_str("*/");
                    i += 2;
                }
            }
            '?' => {
                n += 1;
                out.push_str(&format!("${n}"));
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The first keyword of a statement, upper-cased, after comments and parentheses.
pub fn first_keyword(sql: &str) -> String {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest
                .split_once('\n')
                .map(|(_, r)| r)
                .unwrap_or("")
                .trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest
                .split_once("*/")
                .map(|(_, r)| r)
                .unwrap_or("")
                .trim_start();
        } else if let Some(rest) = s.strip_prefix('(') {
            s = rest.trim_start();
        } else {
            break;
        }
    }
    s.chars()
        .take_while(|c| c.is_ascii_alphabetic() || *c == '_')
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Whether a statement only reads: SELECT, SHOW, ADMIN SHOW, DESCRIBE/DESC, EXPLAIN, VALUES, TABLE, and WITH
/// queries that contain no data-changing keyword. `SELECT ... INTO` and `FOR UPDATE` count as
/// changes.
pub fn is_read_only(sql: &str) -> bool {
    let kw = first_keyword(sql);
    let upper = sql.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    match kw.as_str() {
        "SHOW" | "DESCRIBE" | "DESC" | "EXPLAIN" | "VALUES" | "TABLE" => true,
        // StarRocks/Doris: `ADMIN SHOW FRONTEND CONFIG`, `ADMIN SHOW REPLICA STATUS ...`
        "ADMIN" => words.get(1) == Some(&"SHOW"),
        "SELECT" => !(has("INTO") || has("FOR") && has("UPDATE")),
        "WITH" => !["INSERT", "UPDATE", "DELETE", "MERGE", "INTO"]
            .iter()
            .any(|w| has(w)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_outside_quotes_and_comments() {
        assert_eq!(
            to_dollar_params(
                "select ?, '?', \"a?\", x -- ?\n from t where a = ? /* ? */ and b = ?"
            ),
            "select $1, '?', \"a?\", x -- ?\n from t where a = $2 /* ? */ and b = $3"
        );
        assert_eq!(
            to_dollar_params("select 'it''s ?', ?"),
            "select 'it''s ?', $1"
        );
    }

    #[test]
    fn read_only_classification() {
        for ro in [
            "SELECT 1",
            "  -- c\n select * from t",
            "show tables",
            "DESCRIBE t",
            "explain select 1",
            "(select 1)",
            "with x as (select 1) select * from x",
            "SHOW FRONTENDS",
            "ADMIN SHOW FRONTEND CONFIG LIKE 'enable_legacy%'",
        ] {
            assert!(is_read_only(ro), "{ro}");
        }
        for rw in [
            "insert into t values (1)",
            "UPDATE t SET a = 1",
            "delete from t",
            "create table t (a int)",
            "ADMIN SET FRONTEND CONFIG (\"a\" = \"b\")",
            "set global x = 1",
            "select * into outfile 'x' from t",
            "select * from t for update",
            "with d as (delete from t returning *) select * from d",
            "drop table t",
            "begin",
        ] {
            assert!(!is_read_only(rw), "{rw}");
        }
    }
}
