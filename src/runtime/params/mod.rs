//! Procedure parameters: declarations, the raw values gathered from the command line, a params
//! file and the environment, and their validation into typed values. Pure Rust; the Lua side is
//! `ferry.params{...}` in `runtime::runbook`.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::{FerryError, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    Path,
    Url,
    List,
    Duration,
    Size,
}

impl ParamType {
    pub fn parse(s: &str) -> Option<ParamType> {
        Some(match s {
            "string" => ParamType::String,
            "integer" | "int" => ParamType::Integer,
            "number" => ParamType::Number,
            "boolean" | "bool" => ParamType::Boolean,
            "path" => ParamType::Path,
            "url" => ParamType::Url,
            "list" => ParamType::List,
            "duration" => ParamType::Duration,
            "size" => ParamType::Size,
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
            ParamType::Path => "path",
            ParamType::Url => "url",
            ParamType::List => "list",
            ParamType::Duration => "duration",
            ParamType::Size => "size",
        }
    }
}

/// A raw value before validation: text from the command line or environment, or a list from a
/// TOML/JSON params file.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Text(String),
    List(Vec<String>),
}

impl RawValue {
    pub fn display(&self) -> String {
        match self {
            RawValue::Text(s) => s.clone(),
            RawValue::List(v) => v.join(","),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ParamDecl {
    pub name: String,
    pub ty: ParamType,
    pub default: Option<RawValue>,
    pub required: bool,
    pub doc: String,
    pub secret: bool,
    /// Allowed values (for string parameters such as `mode`).
    pub choices: Option<Vec<String>>,
    /// Another environment variable to read the value from (e.g. Astra's `token`).
    pub env: Option<String>,
}

/// A validated value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Str(String),
    Int(i64),
    Num(f64),
    Bool(bool),
    List(Vec<String>),
}

impl ParamValue {
    /// Canonical text used for hashing and display.
    pub fn canonical(&self) -> String {
        match self {
            ParamValue::Str(s) => s.clone(),
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Num(n) => n.to_string(),
            ParamValue::Bool(b) => b.to_string(),
            ParamValue::List(v) => v.join(","),
        }
    }
}

/// Where raw values come from, lowest priority first: `FERRY_PARAM_*`, `--params FILE`, `-p`.
#[derive(Debug, Clone, Default)]
pub struct RawParams {
    pub values: BTreeMap<String, (RawValue, &'static str)>,
}

impl RawParams {
    pub fn from_sources(cli: &[String], file: Option<&Path>) -> Result<RawParams> {
        let mut raw = RawParams::default();
        for (k, v) in std::env::vars() {
            if let Some(name) = k.strip_prefix("FERRY_PARAM_") {
                raw.values.insert(
                    name.to_ascii_lowercase(),
                    (RawValue::Text(v), "environment"),
                );
            }
        }
        if let Some(path) = file {
            for (k, v) in read_params_file(path)? {
                raw.values.insert(k, (v, "params file"));
            }
        }
        for item in cli {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| FerryError::usage(format!("-p expects KEY=VALUE, got '{item}'")))?;
            let k = k.trim();
            if k.is_empty() {
                return Err(FerryError::usage(format!(
                    "-p expects KEY=VALUE, got '{item}'"
                )));
            }
            raw.values.insert(
                k.to_string(),
                (RawValue::Text(v.to_string()), "command line"),
            );
        }
        Ok(raw)
    }

    /// The command-line form of these values, secrets masked, for "resume with" hints.
    pub fn as_cli_args(&self, secret: &dyn Fn(&str) -> bool) -> Vec<String> {
        self.values
            .iter()
            .filter(|(_, (_, src))| *src == "command line")
            .map(|(k, (v, _))| {
                if secret(k) {
                    format!("-p {k}=<secret>")
                } else {
                    format!("-p {}", shell_quote(&format!("{k}={}", v.display())))
                }
            })
            .collect()
    }
}

/// Quotes for a POSIX shell (resume hints, `ferry.exec` logs). Kept by hand rather than the
/// `shlex` crate: shlex also quotes `=`, `,` and `%`, which no shell treats specially inside an
/// argument, so every resume hint would read `-p 'src=s3://b/p'` instead of `-p src=s3://b/p`.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn read_params_file(path: &Path) -> Result<Vec<(String, RawValue)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| FerryError::io(format!("reading params file {}", path.display()), &e))
        .map_err(|e| FerryError::usage(e.message.clone()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let bad = |msg: String| FerryError::usage(format!("params file {}: {msg}", path.display()));
    let mut out = Vec::new();
    match ext {
        "json" => {
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            let obj = v
                .as_object()
                .ok_or_else(|| bad("expected a JSON object".into()))?;
            for (k, v) in obj {
                out.push((
                    k.clone(),
                    json_raw(v).map_err(|m| bad(format!("{k}: {m}")))?,
                ));
            }
        }
        "toml" => {
            let v: toml::Table = text
                .parse()
                .map_err(|e: toml::de::Error| bad(e.to_string()))?;
            for (k, v) in v {
                let raw = match v {
                    toml::Value::String(s) => RawValue::Text(s),
                    toml::Value::Array(a) => RawValue::List(
                        a.into_iter()
                            .map(|x| match x {
                                toml::Value::String(s) => s,
                                other => other.to_string(),
                            })
                            .collect(),
                    ),
                    toml::Value::Table(_) => {
                        return Err(bad(format!("{k}: tables are not parameter values")));
                    }
                    other => RawValue::Text(other.to_string()),
                };
                out.push((k, raw));
            }
        }
        _ => {
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (k, v) = line
                    .split_once('=')
                    .ok_or_else(|| bad(format!("line {}: expected KEY=VALUE", n + 1)))?;
                out.push((k.trim().to_string(), RawValue::Text(v.trim().to_string())));
            }
        }
    }
    Ok(out)
}

fn json_raw(v: &serde_json::Value) -> std::result::Result<RawValue, String> {
    Ok(match v {
        serde_json::Value::String(s) => RawValue::Text(s.clone()),
        serde_json::Value::Array(a) => RawValue::List(
            a.iter()
                .map(|x| match x {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        ),
        serde_json::Value::Object(_) => return Err("objects are not parameter values".into()),
        serde_json::Value::Null => RawValue::Text(String::new()),
        other => RawValue::Text(other.to_string()),
    })
}

/// Validates one raw value against its declaration.
pub fn parse_value(decl: &ParamDecl, raw: &RawValue) -> std::result::Result<ParamValue, String> {
    let text = || match raw {
        RawValue::Text(s) => Ok(s.trim().to_string()),
        RawValue::List(_) => Err(format!("expected a {}, got a list", decl.ty.name())),
    };
    let value = match decl.ty {
        ParamType::String => ParamValue::Str(match raw {
            RawValue::Text(s) => s.clone(),
            RawValue::List(_) => return Err("expected a string, got a list".into()),
        }),
        ParamType::Path => {
            let t = text()?;
            if t.is_empty() {
                return Err("expected a path, got an empty value".into());
            }
            ParamValue::Str(expand_home(&t))
        }
        ParamType::Url => {
            let t = text()?;
            url::Url::parse(&t).map_err(|e| format!("'{t}' is not a URL ({e})"))?;
            ParamValue::Str(t)
        }
        ParamType::Integer => {
            let t = text()?;
            ParamValue::Int(
                t.replace('_', "")
                    .parse::<i64>()
                    .map_err(|_| format!("'{t}' is not an integer"))?,
            )
        }
        ParamType::Number => {
            let t = text()?;
            ParamValue::Num(
                t.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| format!("'{t}' is not a number"))?,
            )
        }
        ParamType::Boolean => {
            let t = text()?;
            ParamValue::Bool(match t.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => true,
                "false" | "no" | "off" | "0" => false,
                _ => {
                    return Err(format!(
                        "'{t}' is not a boolean (true/false, yes/no, on/off, 1/0)"
                    ));
                }
            })
        }
        ParamType::List => ParamValue::List(match raw {
            RawValue::List(v) => v.clone(),
            RawValue::Text(s) => s
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
        }),
        ParamType::Duration => ParamValue::Num(parse_duration(&text()?)?),
        ParamType::Size => {
            let t = text()?;
            let n = parse_size(&t)?;
            ParamValue::Int(i64::try_from(n).map_err(|_| format!("'{t}' is too large"))?)
        }
    };
    if let Some(choices) = &decl.choices {
        let items: Vec<String> = match &value {
            ParamValue::List(v) => v.clone(),
            other => vec![other.canonical()],
        };
        for item in items {
            if !choices.contains(&item) {
                return Err(format!("'{item}' is not one of: {}", choices.join(", ")));
            }
        }
    }
    Ok(value)
}

fn expand_home(p: &str) -> String {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return Path::new(&home).join(rest).to_string_lossy().into_owned();
    }
    p.to_string()
}

/// "90s", "2h", "1h30m", "500ms", "1.5d", or a plain number of seconds → seconds. The result
/// always fits a `std::time::Duration` (callers convert it with `Duration::from_secs_f64`, which
/// panics on infinity or on more than 2^64 seconds).
pub fn parse_duration(s: &str) -> std::result::Result<f64, String> {
    let secs = parse_duration_unchecked(s)?;
    if std::time::Duration::try_from_secs_f64(secs).is_err() {
        return Err(format!(
            "'{}' is too long a duration (at most {} seconds)",
            s.trim(),
            u64::MAX
        ));
    }
    Ok(secs)
}

fn parse_duration_unchecked(s: &str) -> std::result::Result<f64, String> {
    let s = s.trim();
    let err = || format!("'{s}' is not a duration (examples: 90s, 2h, 1h30m, 500ms)");
    if s.is_empty() {
        return Err(err());
    }
    if let Ok(n) = s.parse::<f64>() {
        return if n >= 0.0 { Ok(n) } else { Err(err()) };
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_len == 0 {
            return Err(err());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        let mult = match unit {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hours" | "hour" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            _ => return Err(err()),
        };
        total += n * mult;
    }
    Ok(total)
}

/// Seconds from a script as a `Duration` that never panics: NaN and negative give zero, and
/// anything over a century (`math.huge` included) a century, which no timeout outlives.
pub fn secs_to_duration(secs: f64) -> std::time::Duration {
    const CENTURY: f64 = 100.0 * 365.25 * 86_400.0;
    if secs.is_nan() || secs <= 0.0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::from_secs_f64(secs.min(CENTURY))
}

/// "64MiB", "1.5GB", "100k", "4096" → bytes. Decimal (kB, MB) and binary (KiB, MiB) units.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let err = || format!("'{s}' is not a size (examples: 4096, 64MiB, 1.5GB, 100k)");
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    if split == 0 {
        return Err(err());
    }
    let n: f64 = s[..split].parse().map_err(|_| err())?;
    let unit = s[split..].trim();
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "ti" | "tib" => 1024.0f64.powi(4),
        _ => return Err(err()),
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes.round() as u64)
}

/// Human size in binary units, as the progress bars show them (indicatif's `HumanBytes`):
/// 1536 → "1.50 KiB".
pub fn format_size(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// The outcome of validation: typed values by name, plus every problem found.
pub struct Resolved {
    pub values: BTreeMap<String, ParamValue>,
}

/// Validates every declared parameter at once; the error lists every problem with its doc.
pub fn resolve(decls: &[ParamDecl], raw: &RawParams) -> Result<Resolved> {
    let mut problems = Vec::new();
    let mut values = BTreeMap::new();
    for d in decls {
        let found = raw
            .values
            .get(&d.name)
            .map(|(v, src)| (v.clone(), *src))
            .or_else(|| {
                d.env.as_ref().and_then(|var| {
                    std::env::var(var)
                        .ok()
                        .map(|v| (RawValue::Text(v), "environment"))
                })
            });
        let candidate = match (found, &d.default) {
            (Some((v, src)), _) => Some((v, src)),
            (None, Some(def)) => Some((def.clone(), "default")),
            (None, None) => None,
        };
        match candidate {
            None if d.required => problems.push(format!(
                "missing required parameter '{}' ({}): {}",
                d.name,
                d.ty.name(),
                d.doc
            )),
            None => {}
            Some((v, src)) => match parse_value(d, &v) {
                Ok(pv) => {
                    if d.secret
                        && let ParamValue::Str(s) = &pv
                    {
                        super::redact::add_secret(s);
                    }
                    // A password inside a URL value (mysql://u:pw@h/db) is a secret too.
                    if let ParamValue::Str(s) = &pv
                        && let Ok(u) = url::Url::parse(s)
                        && let Some(pw) = u.password()
                    {
                        super::redact::add_secret(pw);
                        if let Ok(decoded) = percent_decode(pw) {
                            super::redact::add_secret(&decoded);
                        }
                    }
                    values.insert(d.name.clone(), pv);
                }
                Err(msg) => {
                    let msg = if d.secret {
                        msg.replace(&v.display(), super::redact::MASK)
                    } else {
                        msg
                    };
                    problems.push(format!(
                        "parameter '{}' ({}, from {src}): {msg}\n    {}: {}",
                        d.name,
                        d.ty.name(),
                        d.name,
                        d.doc
                    ))
                }
            },
        }
    }
    for (k, (_, src)) in &raw.values {
        if *src != "environment" && !decls.iter().any(|d| &d.name == k) {
            let known: Vec<&str> = decls.iter().map(|d| d.name.as_str()).collect();
            problems.push(format!(
                "unknown parameter '{k}' (from {src}); this procedure takes: {}",
                if known.is_empty() {
                    "no parameters".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    if problems.is_empty() {
        Ok(Resolved { values })
    } else {
        Err(FerryError::usage(problems.join("\n"))
            .hint("see the parameters with: ferry help <procedure>"))
    }
}

/// A stable hash of the non-secret parameter values (secret values never reach the journal,
/// not even hashed).
pub fn params_hash(decls: &[ParamDecl], values: &BTreeMap<String, ParamValue>) -> String {
    let mut h = Sha256::new();
    for (k, v) in values {
        let secret = decls.iter().any(|d| &d.name == k && d.secret);
        h.update(k.as_bytes());
        h.update(b"=");
        if !secret {
            h.update(v.canonical().as_bytes());
        }
        h.update(b"\n");
    }
    hex::encode(&h.finalize()[..12])
}

/// Percent-decodes a URL component, as the drivers read a URL's user info (a `+` stays a `+`):
/// for masking a password in every form the user may have typed it.
pub fn percent_decode(s: &str) -> Result<String, std::str::Utf8Error> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
