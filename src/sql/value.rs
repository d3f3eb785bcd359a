//! The values rows are made of, between MySQL, PostgreSQL and Lua. The mapping is part of the
//! API (docs/api/sql.md): 64-bit integers stay integers, DECIMAL/NUMERIC become strings, dates
//! become ISO strings, BLOB/BYTEA become byte strings, NULL is a sentinel.

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use mysql_async::consts::{ColumnFlags, ColumnType};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    /// Unsigned values above i64::MAX (MySQL BIGINT UNSIGNED).
    UInt(u64),
    Float(f64),
    Bool(bool),
    /// Text, and the exact forms of DECIMAL, dates, JSON, UUID.
    Text(String),
    Bytes(Vec<u8>),
}

impl SqlValue {
    /// A stable text form, for checksums and messages.
    pub fn canonical(&self) -> Vec<u8> {
        match self {
            SqlValue::Null => b"\\N".to_vec(),
            SqlValue::Int(i) => i.to_string().into_bytes(),
            SqlValue::UInt(u) => u.to_string().into_bytes(),
            SqlValue::Float(f) => format!("{f}").into_bytes(),
            SqlValue::Bool(b) => (if *b { "1" } else { "0" }).as_bytes().to_vec(),
            SqlValue::Text(s) => s.as_bytes().to_vec(),
            SqlValue::Bytes(b) => b.clone(),
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SqlValue::Int(i) => Some(*i),
            SqlValue::UInt(u) => i64::try_from(*u).ok(),
            SqlValue::Text(s) => s.trim().parse().ok(),
            SqlValue::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
            SqlValue::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            SqlValue::Text(s) => Some(s.clone()),
            SqlValue::Bytes(b) => String::from_utf8(b.clone()).ok(),
            SqlValue::Int(i) => Some(i.to_string()),
            SqlValue::UInt(u) => Some(u.to_string()),
            SqlValue::Float(f) => Some(f.to_string()),
            SqlValue::Bool(b) => Some(b.to_string()),
            SqlValue::Null => None,
        }
    }
}

// ---------------------------------------------------------------- MySQL

/// Dates with fractional seconds in one form for both servers: trailing zeros of the fraction
/// dropped (`...:59.120000` and `...:59.120` are both `...:59.12`; `...:59.000000` is `...:59`).
pub fn normalize_fraction(s: String) -> String {
    match s.rfind('.') {
        Some(dot) if s[dot + 1..].chars().all(|c| c.is_ascii_digit()) && s[..dot].contains(':') => {
            let trimmed = s.trim_end_matches('0');
            trimmed.trim_end_matches('.').to_string()
        }
        _ => s,
    }
}

#[allow(clippy::too_many_arguments)] // the fields of mysql_async::Value::Date
fn mysql_date(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32, date_only: bool) -> String {
    if date_only {
        format!("{y:04}-{mo:02}-{d:02}")
    } else if us > 0 {
        normalize_fraction(format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}"
        ))
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
    }
}

/// A MySQL value, interpreted by its column's type (text-protocol results arrive as bytes).
pub fn from_mysql(v: mysql_async::Value, col: &mysql_async::Column) -> SqlValue {
    use mysql_async::Value as V;
    let ty = col.column_type();
    let unsigned = col.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = col.character_set() == 63;
    match v {
        V::NULL => SqlValue::Null,
        V::Int(i) => SqlValue::Int(i),
        V::UInt(u) => match i64::try_from(u) {
            Ok(i) => SqlValue::Int(i),
            Err(_) => SqlValue::UInt(u),
        },
        V::Float(f) => SqlValue::Float(f as f64),
        V::Double(f) => SqlValue::Float(f),
        V::Date(y, mo, d, h, mi, s, us) => SqlValue::Text(mysql_date(
            y,
            mo,
            d,
            h,
            mi,
            s,
            us,
            ty == ColumnType::MYSQL_TYPE_DATE,
        )),
        V::Time(neg, days, h, mi, s, us) => {
            let hours = days * 24 + h as u32;
            let sign = if neg { "-" } else { "" };
            SqlValue::Text(if us > 0 {
                normalize_fraction(format!("{sign}{hours:02}:{mi:02}:{s:02}.{us:06}"))
            } else {
                format!("{sign}{hours:02}:{mi:02}:{s:02}")
            })
        }
        V::Bytes(b) => {
            use ColumnType::*;
            let text = || String::from_utf8(b.clone()).ok();
            match ty {
                MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_LONG | MYSQL_TYPE_LONGLONG
                | MYSQL_TYPE_INT24 | MYSQL_TYPE_YEAR => {
                    let s = text().unwrap_or_default();
                    if unsigned {
                        match s.parse::<u64>() {
                            Ok(u) => match i64::try_from(u) {
                                Ok(i) => SqlValue::Int(i),
                                Err(_) => SqlValue::UInt(u),
                            },
                            Err(_) => SqlValue::Text(s),
                        }
                    } else {
                        s.parse::<i64>()
                            .map(SqlValue::Int)
                            .unwrap_or(SqlValue::Text(s))
                    }
                }
                MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => {
                    let s = text().unwrap_or_default();
                    s.parse::<f64>()
                        .map(SqlValue::Float)
                        .unwrap_or(SqlValue::Text(s))
                }
                MYSQL_TYPE_DATETIME
                | MYSQL_TYPE_TIMESTAMP
                | MYSQL_TYPE_DATETIME2
                | MYSQL_TYPE_TIMESTAMP2 => SqlValue::Text(normalize_fraction(
                    text().unwrap_or_default().replacen(' ', "T", 1),
                )),
                MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => {
                    SqlValue::Text(normalize_fraction(text().unwrap_or_default()))
                }
                MYSQL_TYPE_BIT => SqlValue::Bytes(b),
                _ if binary => SqlValue::Bytes(b),
                _ => match String::from_utf8(b) {
                    Ok(s) => SqlValue::Text(s),
                    Err(e) => SqlValue::Bytes(e.into_bytes()),
                },
            }
        }
    }
}

pub fn to_mysql(v: &SqlValue) -> mysql_async::Value {
    use mysql_async::Value as V;
    match v {
        SqlValue::Null => V::NULL,
        SqlValue::Int(i) => V::Int(*i),
        SqlValue::UInt(u) => V::UInt(*u),
        SqlValue::Float(f) => V::Double(*f),
        SqlValue::Bool(b) => V::Int(*b as i64),
        SqlValue::Text(s) => V::Bytes(s.as_bytes().to_vec()),
        SqlValue::Bytes(b) => V::Bytes(b.clone()),
    }
}

// ---------------------------------------------------------------- PostgreSQL

type BoxErr = Box<dyn StdError + Sync + Send>;

/// NUMERIC in PostgreSQL's binary form, decoded to its exact decimal text.
struct PgNumeric(String);

impl<'a> FromSql<'a> for PgNumeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxErr> {
        if raw.len() < 8 {
            return Err("short NUMERIC".into());
        }
        let rd = |i: usize| i16::from_be_bytes([raw[i], raw[i + 1]]);
        let ndigits = rd(0) as usize;
        let weight = rd(2) as i32;
        let sign = u16::from_be_bytes([raw[4], raw[5]]);
        let dscale = rd(6).max(0) as usize;
        match sign {
            0xC000 => return Ok(PgNumeric("NaN".into())),
            0xD000 => return Ok(PgNumeric("Infinity".into())),
            0xF000 => return Ok(PgNumeric("-Infinity".into())),
            _ => {}
        }
        let digits: Vec<i16> = (0..ndigits).map(|i| rd(8 + 2 * i)).collect();
        let mut int_part = String::new();
        for w in 0..=weight.max(-1) {
            let d = digits.get(w as usize).copied().unwrap_or(0);
            if int_part.is_empty() {
                int_part = d.to_string();
            } else {
                int_part.push_str(&format!("{d:04}"));
            }
        }
        if int_part.is_empty() {
            int_part.push('0');
        }
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            let d = if i < 0 {
                0
            } else {
                digits.get(i as usize).copied().unwrap_or(0)
            };
            frac.push_str(&format!("{d:04}"));
            i += 1;
        }
        frac.truncate(dscale);
        let mut s = if sign == 0x4000 {
            "-".to_string()
        } else {
            String::new()
        };
        s.push_str(&int_part);
        if dscale > 0 {
            s.push('.');
            s.push_str(&frac);
        }
        Ok(PgNumeric(s))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// Encodes decimal text as PostgreSQL's binary NUMERIC.
fn encode_numeric(text: &str, out: &mut BytesMut) -> Result<(), BoxErr> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if t.eq_ignore_ascii_case("nan") {
        out.put_i16(0);
        out.put_i16(0);
        out.put_u16(0xC000);
        out.put_i16(0);
        return Ok(());
    }
    let (int_s, frac_s) = t.split_once('.').unwrap_or((t, ""));
    if int_s.is_empty() && frac_s.is_empty()
        || !int_s
            .chars()
            .chain(frac_s.chars())
            .all(|c| c.is_ascii_digit())
    {
        return Err(format!("'{text}' is not a decimal number").into());
    }
    let dscale = frac_s.len() as i16;
    let int_s = int_s.trim_start_matches('0');
    // Pad the integer part on the left and the fraction on the right to groups of 4.
    let pad_left = (4 - int_s.len() % 4) % 4;
    let int_p = format!("{}{}", "0".repeat(pad_left), int_s);
    let pad_right = (4 - frac_s.len() % 4) % 4;
    let frac_p = format!("{}{}", frac_s, "0".repeat(pad_right));
    let mut groups: Vec<i16> = Vec::new();
    for c in int_p
        .as_bytes()
        .chunks(4)
        .chain(frac_p.as_bytes().chunks(4))
    {
        groups.push(std::str::from_utf8(c)?.parse()?);
    }
    let mut weight = (int_p.len() / 4) as i16 - 1;
    while groups.first() == Some(&0) && !groups.is_empty() {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    out.put_i16(groups.len() as i16);
    out.put_i16(weight);
    out.put_u16(if neg && !groups.is_empty() { 0x4000 } else { 0 });
    out.put_i16(dscale);
    for g in groups {
        out.put_i16(g);
    }
    Ok(())
}

pub fn from_pg(row: &tokio_postgres::Row, i: usize) -> Result<SqlValue, String> {
    let ty = row.columns()[i].type_().clone();
    let name = row.columns()[i].name().to_string();
    let err = |e: tokio_postgres::Error| format!("column {name}: {e}");
    macro_rules! get {
        ($t:ty) => {
            row.try_get::<_, Option<$t>>(i).map_err(err)?
        };
    }
    Ok(match ty {
        Type::BOOL => get!(bool).map(SqlValue::Bool).unwrap_or(SqlValue::Null),
        Type::INT2 => get!(i16)
            .map(|v| SqlValue::Int(v as i64))
            .unwrap_or(SqlValue::Null),
        Type::INT4 => get!(i32)
            .map(|v| SqlValue::Int(v as i64))
            .unwrap_or(SqlValue::Null),
        Type::INT8 => get!(i64).map(SqlValue::Int).unwrap_or(SqlValue::Null),
        Type::OID => get!(u32)
            .map(|v| SqlValue::Int(v as i64))
            .unwrap_or(SqlValue::Null),
        Type::FLOAT4 => get!(f32)
            .map(|v| SqlValue::Float(v as f64))
            .unwrap_or(SqlValue::Null),
        Type::FLOAT8 => get!(f64).map(SqlValue::Float).unwrap_or(SqlValue::Null),
        Type::NUMERIC => get!(PgNumeric)
            .map(|n| SqlValue::Text(n.0))
            .unwrap_or(SqlValue::Null),
        Type::BYTEA => get!(Vec<u8>).map(SqlValue::Bytes).unwrap_or(SqlValue::Null),
        Type::DATE => get!(chrono::NaiveDate)
            .map(|d| SqlValue::Text(d.to_string()))
            .unwrap_or(SqlValue::Null),
        Type::TIME => get!(chrono::NaiveTime)
            .map(|d| SqlValue::Text(normalize_fraction(d.format("%H:%M:%S%.6f").to_string())))
            .unwrap_or(SqlValue::Null),
        Type::TIMESTAMP => get!(chrono::NaiveDateTime)
            .map(|d| {
                SqlValue::Text(normalize_fraction(
                    d.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
                ))
            })
            .unwrap_or(SqlValue::Null),
        Type::TIMESTAMPTZ => get!(chrono::DateTime<chrono::Utc>)
            .map(|d| SqlValue::Text(d.to_rfc3339()))
            .unwrap_or(SqlValue::Null),
        Type::JSON | Type::JSONB => get!(serde_json::Value)
            .map(|v| SqlValue::Text(v.to_string()))
            .unwrap_or(SqlValue::Null),
        Type::UUID => get!(uuid::Uuid)
            .map(|u| SqlValue::Text(u.to_string()))
            .unwrap_or(SqlValue::Null),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            get!(String).map(SqlValue::Text).unwrap_or(SqlValue::Null)
        }
        other => match row.try_get::<_, Option<String>>(i) {
            Ok(v) => v.map(SqlValue::Text).unwrap_or(SqlValue::Null),
            Err(_) => {
                return Err(format!(
                    "column {name} has type {other}, which ferry does not map; cast it in the query ({name}::text)"
                ));
            }
        },
    })
}

/// A parameter for PostgreSQL: accepts every type and encodes itself for the type the server
/// inferred, so scripts bind the same Lua values for both servers.
#[derive(Debug)]
pub struct PgParam(pub SqlValue);

impl ToSql for PgParam {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxErr> {
        let v = &self.0;
        if *v == SqlValue::Null {
            return Ok(IsNull::Yes);
        }
        let need_text = || {
            v.text()
                .ok_or_else(|| -> BoxErr { format!("cannot bind {v:?} as {ty}").into() })
        };
        let int = || -> Result<i64, BoxErr> {
            match v {
                SqlValue::Float(f) if f.fract() == 0.0 => Ok(*f as i64),
                _ => v
                    .as_i64()
                    .ok_or_else(|| format!("cannot bind {v:?} as {ty}").into()),
            }
        };
        match *ty {
            Type::BOOL => {
                let b = match v {
                    SqlValue::Bool(b) => *b,
                    SqlValue::Int(i) => *i != 0,
                    _ => matches!(
                        need_text()?.to_ascii_lowercase().as_str(),
                        "t" | "true" | "1" | "yes" | "on"
                    ),
                };
                b.to_sql(ty, out)
            }
            Type::INT2 => i16::try_from(int()?)?.to_sql(ty, out),
            Type::INT4 => i32::try_from(int()?)?.to_sql(ty, out),
            Type::INT8 => int()?.to_sql(ty, out),
            Type::OID => u32::try_from(int()?)?.to_sql(ty, out),
            Type::FLOAT4 | Type::FLOAT8 => {
                let f = match v {
                    SqlValue::Float(f) => *f,
                    SqlValue::Int(i) => *i as f64,
                    _ => need_text()?.trim().parse::<f64>()?,
                };
                if *ty == Type::FLOAT4 {
                    (f as f32).to_sql(ty, out)
                } else {
                    f.to_sql(ty, out)
                }
            }
            Type::NUMERIC => {
                encode_numeric(&need_text()?, out)?;
                Ok(IsNull::No)
            }
            Type::BYTEA => match v {
                SqlValue::Bytes(b) => b.to_sql(ty, out),
                _ => need_text()?.as_bytes().to_sql(ty, out),
            },
            Type::DATE => need_text()?.parse::<chrono::NaiveDate>()?.to_sql(ty, out),
            Type::TIME => need_text()?.parse::<chrono::NaiveTime>()?.to_sql(ty, out),
            Type::TIMESTAMP => {
                let t = need_text()?;
                let d = chrono::NaiveDateTime::parse_from_str(
                    &t.replacen(' ', "T", 1),
                    "%Y-%m-%dT%H:%M:%S%.f",
                )?;
                d.to_sql(ty, out)
            }
            Type::TIMESTAMPTZ => {
                let t = need_text()?;
                let d = chrono::DateTime::parse_from_rfc3339(&t.replacen(' ', "T", 1))?
                    .with_timezone(&chrono::Utc);
                d.to_sql(ty, out)
            }
            Type::JSON | Type::JSONB => {
                serde_json::from_str::<serde_json::Value>(&need_text()?)?.to_sql(ty, out)
            }
            Type::UUID => need_text()?.parse::<uuid::Uuid>()?.to_sql(ty, out),
            _ => match v {
                SqlValue::Bytes(b) => std::str::from_utf8(b)?.to_sql(ty, out),
                _ => need_text()?.to_sql(ty, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_are_normalised() {
        assert_eq!(
            normalize_fraction("1999-12-31T23:59:59.000000".into()),
            "1999-12-31T23:59:59"
        );
        assert_eq!(
            normalize_fraction("2024-02-29T13:14:15.120".into()),
            "2024-02-29T13:14:15.12"
        );
        assert_eq!(
            normalize_fraction("12.500".into()),
            "12.500",
            "decimals are not dates"
        );
    }

    #[test]
    fn numeric_round_trips_through_the_binary_form() {
        for s in [
            "0",
            "1",
            "-1",
            "12345.678",
            "0.0001",
            "-0.50",
            "99999999999999999999.123456789",
            "10000",
            "123.4500",
        ] {
            let mut b = BytesMut::new();
            encode_numeric(s, &mut b).unwrap();
            let back = PgNumeric::from_sql(&Type::NUMERIC, &b).unwrap().0;
            let norm = |x: &str| {
                let x = x.trim_start_matches('-');
                x.trim_start_matches('0').to_string()
            };
            assert_eq!(norm(&back), norm(s), "{s} -> {back}");
            assert_eq!(
                back.starts_with('-'),
                s.starts_with('-') && s != "-0",
                "{s} -> {back}"
            );
        }
        assert!(encode_numeric("12a", &mut BytesMut::new()).is_err());
    }
}
