//! Secret redaction: every value of a parameter declared `secret` is replaced by `***` in every
//! line ferry writes (human log, JSON events, journal, summary, error messages).

use std::borrow::Cow;
use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

pub const MASK: &str = "***";

/// Registers a secret value. Values shorter than 3 characters are not registered (they would
/// mask ordinary text), and the parameter itself is still never printed.
pub fn add_secret(value: &str) {
    if value.len() < 3 {
        return;
    }
    if let Ok(mut s) = SECRETS.write()
        && !s.iter().any(|v| v == value)
    {
        s.push(value.to_string());
        // Longest first so a secret containing another is masked whole.
        s.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }
}

pub fn redact(text: &str) -> Cow<'_, str> {
    let Ok(secrets) = SECRETS.read() else {
        return Cow::Borrowed(text);
    };
    if secrets.is_empty() || !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for s in secrets.iter() {
        out = out.replace(s.as_str(), MASK);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_secrets_longest_first() {
        add_secret("hunter2hunter2");
        add_secret("hunter2");
        assert_eq!(redact("pw=hunter2hunter2 x"), "pw=*** x");
        assert_eq!(redact("a hunter2"), "a ***");
        assert_eq!(redact("nothing here"), "nothing here");
    }
}
