//! Output: human lines on stderr through `tracing` (coloured on a terminal unless `NO_COLOR`;
//! filtered by -v/-q, or by `RUST_LOG` when set), and `--log-json FILE` (`-` for stdout) with one
//! versioned JSON event per line. Every byte written goes through secret redaction.
//!
//! Targets: events with target [`EV`] are human renderings of runbook events that are written to
//! the JSON file separately (structured, by [`event`]); every other tracing event is copied to the
//! JSON file as a `log` event.

use std::fs::File;
use std::io::{self, LineWriter, Write};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt::MakeWriter};

use super::redact::redact;

/// Target of human lines whose structured form is written by [`event`].
pub const EV: &str = "ferry::ev";

/// Version of the JSON event schema (docs/cli.md, "--log-json events"); consumers must ignore
/// unknown fields. 2: `ferry.log` fields keep their Lua types (1 gave every field as a string).
pub const EVENT_SCHEMA: u32 = 2;

struct JsonSink {
    out: LineWriter<Box<dyn Write + Send>>,
    run_id: String,
    seq: u64,
}

static JSON: OnceLock<Mutex<JsonSink>> = OnceLock::new();

/// How chatty stderr is: -1 quiet (warnings and errors), 0 normal, 1 verbose (debug), 2 trace.
#[derive(Clone, Copy, Debug, Default)]
pub struct Verbosity(pub i8);

/// Colour on stderr: a terminal, and no `NO_COLOR` with a value (https://no-color.org: "when
/// present and not an empty string, prevents the addition of ANSI color").
pub fn colour() -> bool {
    crate::runtime::progress::stderr_is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `--log-json -` is stdout (the events are then the only thing ferry writes there, besides what
/// a script prints); any other value is a file.
fn json_writer(path: &Path) -> io::Result<Box<dyn Write + Send>> {
    if path.as_os_str() == "-" {
        Ok(Box::new(io::stdout()))
    } else {
        Ok(Box::new(File::create(path)?))
    }
}

/// The stderr filter from `RUST_LOG` (tracing-subscriber's EnvFilter syntax, e.g. `debug` or
/// `ferry=trace,object_store=debug`) when it is set; it then replaces -v/-q for stderr.
fn env_filter() -> Option<EnvFilter> {
    let spec = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())?;
    match EnvFilter::try_new(&spec) {
        Ok(f) => Some(f),
        Err(e) => {
            say(&format!(
                "warning: RUST_LOG={spec:?} is not a valid filter ({e}); using -v/-q instead"
            ));
            None
        }
    }
}

pub fn init(verbosity: Verbosity, log_json: Option<&Path>, run_id: &str) -> io::Result<()> {
    if let Some(path) = log_json {
        let out = json_writer(path)?;
        let _ = JSON.set(Mutex::new(JsonSink {
            out: LineWriter::new(out),
            run_id: run_id.to_string(),
            seq: 0,
        }));
    }
    let level = match verbosity.0 {
        i8::MIN..=-1 => LevelFilter::WARN,
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let ours = Targets::new()
        .with_target("ferry", level)
        .with_default(LevelFilter::WARN.min(level));
    // RUST_LOG, when set, replaces the -v/-q filter (a `None` filter lets everything through).
    let (by_env, by_flags) = match env_filter() {
        Some(f) => (Some(f), None),
        None => (None, Some(ours)),
    };
    let human = tracing_subscriber::fmt::layer()
        .with_writer(StderrWriter)
        .with_ansi(colour())
        .with_target(false)
        .with_timer(ShortTime)
        .with_filter(by_flags)
        .with_filter(by_env);
    let json_level = if verbosity.0 >= 1 {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    let json = JsonLayer.with_filter(
        Targets::new()
            .with_target("ferry", json_level)
            .with_default(LevelFilter::WARN),
    );
    // A second init (tests calling run twice in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(human)
        .with(json)
        .try_init();
    Ok(())
}

/// Writes one structured event to the `--log-json` file, if any.
pub fn event(name: &str, fields: Value) {
    super::metrics::observe(name, &fields);
    let Some(sink) = JSON.get() else { return };
    let Ok(mut sink) = sink.lock() else { return };
    sink.seq += 1;
    let mut obj = Map::new();
    obj.insert("v".into(), json!(EVENT_SCHEMA));
    obj.insert(
        "ts".into(),
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    obj.insert("run_id".into(), json!(sink.run_id));
    obj.insert("seq".into(), json!(sink.seq));
    obj.insert("event".into(), json!(name));
    if let Value::Object(extra) = fields {
        for (k, v) in extra {
            obj.insert(k, v);
        }
    }
    let line = Value::Object(obj).to_string();
    let line = redact(&line);
    let _ = writeln!(sink.out, "{line}");
}

pub fn json_enabled() -> bool {
    JSON.get().is_some()
}

/// Whether anything reads events: `--log-json` or `--metrics` (periodic events such as
/// `progress` are only made then).
pub fn events_wanted() -> bool {
    json_enabled() || super::metrics::enabled()
}

struct ShortTime;

impl FormatTime for ShortTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", chrono::Local::now().format("%H:%M:%S"))
    }
}

/// stderr, redacted, and drawn above any progress bars.
#[derive(Clone, Copy)]
pub struct StderrWriter;

impl<'a> MakeWriter<'a> for StderrWriter {
    type Writer = StderrWriter;
    fn make_writer(&'a self) -> Self::Writer {
        StderrWriter
    }
}

impl Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let text = redact(&text);
        crate::runtime::progress::print_above(&text);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Prints a line for the user on stderr (redacted, above progress bars), regardless of tracing
/// filters except `-q`. Used for summaries and final error reports.
pub fn say(text: &str) {
    let text = redact(text);
    let mut t = text.into_owned();
    if !t.ends_with('\n') {
        t.push('\n');
    }
    crate::runtime::progress::print_above(&t);
}

struct JsonLayer;

struct FieldsVisitor(Map<String, Value>);

impl Visit for FieldsVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), json!(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), json!(value));
    }
}

impl<S: tracing::Subscriber> Layer<S> for JsonLayer {
    fn on_event(&self, ev: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if !json_enabled() || ev.metadata().target() == EV {
            return;
        }
        let mut v = FieldsVisitor(Map::new());
        ev.record(&mut v);
        let mut fields = v.0;
        fields.insert(
            "level".into(),
            json!(ev.metadata().level().as_str().to_lowercase()),
        );
        fields.insert("target".into(), json!(ev.metadata().target()));
        event("log", Value::Object(fields));
    }
}
