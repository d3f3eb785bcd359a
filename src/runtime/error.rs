//! One error type across Rust and Lua: a stable kind, a message, a retryable flag and context.
//!
//! Rust primitives return [`FerryError`]; it crosses into Lua as an external error and comes back
//! out through [`FerryError::from_lua_error`]. Lua code sees it as a value with `kind`, `message`,
//! `retryable`, `context`, `location` and `step` fields (see `runtime::lua_error`).

use std::fmt;

/// Stable error classes. The string form is part of the Lua API (`err.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad command line or parameters: exit 2.
    Usage,
    /// A `confirm` was declined or could not be asked: exit 3.
    Confirm,
    /// Interrupted (Ctrl-C): exit 130.
    Cancelled,
    NotFound,
    Auth,
    InvalidInput,
    Conflict,
    Unavailable,
    Timeout,
    Io,
    Exec,
    /// An error raised by Lua code (`error(...)`, a runtime error in the script).
    Lua,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::Confirm => "confirm",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Auth => "auth",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Io => "io",
            ErrorKind::Exec => "exec",
            ErrorKind::Lua => "lua",
            ErrorKind::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorKind> {
        ALL_KINDS.iter().copied().find(|k| k.as_str() == s)
    }

    /// Whether an error of this kind is worth retrying by default.
    pub fn default_retryable(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }

    /// The process exit code for a run that ends with this kind of error.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Usage => 2,
            ErrorKind::Confirm => 3,
            ErrorKind::Cancelled => 130,
            _ => 1,
        }
    }
}

pub const ALL_KINDS: &[ErrorKind] = &[
    ErrorKind::Usage,
    ErrorKind::Confirm,
    ErrorKind::Cancelled,
    ErrorKind::NotFound,
    ErrorKind::Auth,
    ErrorKind::InvalidInput,
    ErrorKind::Conflict,
    ErrorKind::Unavailable,
    ErrorKind::Timeout,
    ErrorKind::Io,
    ErrorKind::Exec,
    ErrorKind::Lua,
    ErrorKind::Internal,
];

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error every ferry primitive returns. Boxed so `Result<T, FerryError>` stays small; fields
/// are reached through `Deref` (`err.kind`, `err.message`).
#[derive(Debug, Clone)]
pub struct FerryError(Box<ErrorData>);

#[derive(Debug, Clone)]
pub struct ErrorData {
    pub kind: ErrorKind,
    pub message: String,
    pub retryable: bool,
    /// Ordered context pairs: ("path", "/x"), ("step", "copy"), ("key", "a/b") ...
    pub context: Vec<(String, String)>,
    /// `script.lua:LINE` of the script line that raised or called the failing primitive.
    pub location: Option<String>,
    /// Lua traceback captured where the error was raised.
    pub traceback: Option<String>,
    /// What the user can do about it.
    pub hint: Option<String>,
}

pub type Result<T, E = FerryError> = std::result::Result<T, E>;

impl std::ops::Deref for FerryError {
    type Target = ErrorData;
    fn deref(&self) -> &ErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for FerryError {
    fn deref_mut(&mut self) -> &mut ErrorData {
        &mut self.0
    }
}

impl FerryError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        FerryError(Box::new(ErrorData {
            kind,
            message: message.into(),
            retryable: kind.default_retryable(),
            context: Vec::new(),
            location: None,
            traceback: None,
            hint: None,
        }))
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    pub fn io(what: impl fmt::Display, err: &std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::Auth,
            std::io::ErrorKind::AlreadyExists => ErrorKind::Conflict,
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                ErrorKind::InvalidInput
            }
            _ => ErrorKind::Io,
        };
        Self::new(kind, format!("{what}: {err}"))
    }

    pub fn with(mut self, key: impl Into<String>, value: impl fmt::Display) -> Self {
        self.context.push((key.into(), value.to_string()));
        self
    }

    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn context_value(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Recover a `FerryError` from whatever mlua hands back: our own error (possibly wrapped in
    /// callback and context layers), a Lua runtime error string, a syntax error...
    pub fn from_lua_error(err: &mlua::Error) -> FerryError {
        match err {
            mlua::Error::ExternalError(e) => {
                if let Some(fe) = e.downcast_ref::<FerryError>() {
                    return fe.clone();
                }
                FerryError::new(ErrorKind::Internal, e.to_string())
            }
            mlua::Error::CallbackError { cause, traceback } => {
                let mut fe = FerryError::from_lua_error(cause);
                if fe.traceback.is_none() {
                    fe.traceback = Some(traceback.clone());
                }
                fe
            }
            mlua::Error::WithContext { context, cause } => {
                let mut fe = FerryError::from_lua_error(cause);
                fe.message = format!("{context}: {}", fe.message);
                fe
            }
            mlua::Error::RuntimeError(msg) => FerryError::new(ErrorKind::Lua, msg.clone()),
            mlua::Error::SyntaxError { message, .. } => {
                FerryError::new(ErrorKind::Lua, format!("syntax error: {message}"))
            }
            mlua::Error::MemoryError(msg) => {
                FerryError::new(ErrorKind::Internal, format!("out of memory: {msg}"))
            }
            mlua::Error::BadArgument {
                to,
                pos,
                name,
                cause,
            } => {
                let inner = FerryError::from_lua_error(cause);
                let func = to.as_deref().unwrap_or("function");
                let arg = name
                    .as_deref()
                    .map(|n| format!("'{n}'"))
                    .unwrap_or_else(|| format!("#{pos}"));
                FerryError::new(
                    ErrorKind::InvalidInput,
                    format!("bad argument {arg} to {func}: {}", inner.message),
                )
            }
            mlua::Error::FromLuaConversionError { from, to, message } => FerryError::new(
                ErrorKind::InvalidInput,
                match message {
                    Some(m) => format!("expected {to}, got {from}: {m}"),
                    None => format!("expected {to}, got {from}"),
                },
            ),
            other => FerryError::new(ErrorKind::Lua, other.to_string()),
        }
    }

    /// One line: `[kind] message (key=value, ...)`.
    pub fn one_line(&self) -> String {
        let mut s = format!("[{}] {}", self.kind, self.message);
        if !self.context.is_empty() {
            let ctx: Vec<String> = self
                .context
                .iter()
                .filter(|(k, _)| k != "step")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if !ctx.is_empty() {
                s.push_str(&format!(" ({})", ctx.join(", ")));
            }
        }
        s
    }

    pub fn to_json(&self) -> serde_json::Value {
        let ctx: serde_json::Map<String, serde_json::Value> = self
            .context
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::json!({
            "kind": self.kind.as_str(),
            "message": self.message,
            "retryable": self.retryable,
            "context": ctx,
            "location": self.location,
        })
    }
}

impl fmt::Display for FerryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FerryError {}

impl From<FerryError> for mlua::Error {
    fn from(e: FerryError) -> Self {
        mlua::Error::external(e)
    }
}

/// Shorthand for returning a [`FerryError`] from a Lua binding.
pub trait IntoLuaResult<T> {
    fn lua_err(self) -> mlua::Result<T>;
}

impl<T> IntoLuaResult<T> for Result<T> {
    fn lua_err(self) -> mlua::Result<T> {
        self.map_err(mlua::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_map_to_exit_codes() {
        for k in ALL_KINDS {
            assert_eq!(ErrorKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(ErrorKind::Usage.exit_code(), 2);
        assert_eq!(ErrorKind::Confirm.exit_code(), 3);
        assert_eq!(ErrorKind::Cancelled.exit_code(), 130);
        assert_eq!(ErrorKind::Io.exit_code(), 1);
    }

    #[test]
    #[allow(clippy::arc_with_non_send_sync)] // mlua's own error type holds this Arc
    fn ferry_error_survives_the_trip_through_mlua() {
        let e = FerryError::new(ErrorKind::NotFound, "no such object").with("key", "a/b");
        let wrapped = mlua::Error::CallbackError {
            traceback: "tb".into(),
            cause: std::sync::Arc::new(mlua::Error::from(e)),
        };
        let back = FerryError::from_lua_error(&wrapped);
        assert_eq!(back.kind, ErrorKind::NotFound);
        assert_eq!(back.context_value("key"), Some("a/b"));
        assert_eq!(back.traceback.as_deref(), Some("tb"));
    }
}
