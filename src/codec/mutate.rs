//! Near-miss inputs for the parser fuzz tests (issue 22, "Garbage in"): a valid text from a
//! format's own generator with a few of the edits people make by hand: a cut-off file, a stray
//! quote or separator, a continuation line, a byte order mark, Windows or old-Mac line ends, a
//! pasted very long line, a repeated line (duplicate keys and sections), non-ASCII text.
//!
//! Test-only. The unit tests use it as `crate::codec::mutate`; tests/fuzz_inputs.rs includes the
//! same file with `#[path]`, so both fuzz the same way.

use proptest::prelude::*;
use proptest::sample::Index;

/// Fragments every format gets inserted somewhere: separators, quotes, escapes, comment and
/// section characters, line ends, non-ASCII, control characters.
pub const COMMON_TOKENS: &[&str] = &[
    "\"",
    "'",
    "=",
    ":",
    " = ",
    "\\",
    "\\\n",
    "\n",
    "\r\n",
    "\r",
    " ",
    "\t",
    "[",
    "]",
    "#",
    ";",
    "!",
    "%",
    ",",
    "\u{feff}",
    "\u{a0}",
    "é",
    "日本語",
    "😀",
    "\u{0}",
    "\u{1}",
    "\u{7f}",
    "\u{2028}",
    "\n  continued",
    "\n\tmore",
    "\\u00e9",
    "\\uD83D\\uDE00",
    "\\uZZ",
    "%(name)s",
    "&",
    "?",
    "@",
    "/",
    "//",
    "..",
    "${x}",
    "0x1F",
    "-1",
    "1e400",
    "NaN",
    "inf",
];

#[derive(Debug, Clone)]
pub enum Edit {
    /// Cut the text at a point (an editor or a copy that stopped early).
    Truncate(Index),
    /// Insert one of the tokens.
    Insert(Index, Index),
    /// Delete up to 8 characters.
    Delete(Index, usize),
    /// Repeat one line right after itself (a key or section set twice).
    DuplicateLine(Index),
    /// Every `\n` becomes `\r\n` (Windows) or `\r` (old Mac).
    LineEnds(bool),
    /// A UTF-8 byte order mark at the start (Notepad).
    Bom,
    /// A very long run of one character.
    LongRun(Index, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => any::<Index>().prop_map(Edit::Truncate),
        4 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Insert(a, b)),
        1 => (any::<Index>(), 1usize..8).prop_map(|(a, n)| Edit::Delete(a, n)),
        2 => any::<Index>().prop_map(Edit::DuplicateLine),
        1 => any::<bool>().prop_map(Edit::LineEnds),
        1 => Just(Edit::Bom),
        1 => (any::<Index>(), 1000usize..20_000).prop_map(|(a, n)| Edit::LongRun(a, n)),
    ]
}

fn boundary(s: &str, idx: &Index) -> usize {
    let mut i = idx.index(s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Applies the edits in order; `tokens` are the format's own fragments, tried as often as the
/// common ones.
pub fn apply(mut s: String, edits: &[Edit], tokens: &[&str]) -> String {
    for e in edits {
        match e {
            Edit::Truncate(i) => {
                let at = boundary(&s, i);
                s.truncate(at);
            }
            Edit::Insert(i, t) => {
                let at = boundary(&s, i);
                let all = COMMON_TOKENS.len() + tokens.len();
                let k = t.index(all);
                let tok = if k < COMMON_TOKENS.len() {
                    COMMON_TOKENS[k]
                } else {
                    tokens[k - COMMON_TOKENS.len()]
                };
                s.insert_str(at, tok);
            }
            Edit::Delete(i, n) => {
                let at = boundary(&s, i);
                let end = s[at..]
                    .char_indices()
                    .nth(*n)
                    .map_or(s.len(), |(j, _)| at + j);
                s.replace_range(at..end, "");
            }
            Edit::DuplicateLine(i) => {
                let lines: Vec<&str> = s.split_inclusive('\n').collect();
                if !lines.is_empty() {
                    let k = i.index(lines.len());
                    let mut out = String::with_capacity(s.len() * 2);
                    for (j, l) in lines.iter().enumerate() {
                        out.push_str(l);
                        if j == k {
                            if !l.ends_with('\n') {
                                out.push('\n');
                            }
                            out.push_str(l);
                        }
                    }
                    s = out;
                }
            }
            Edit::LineEnds(crlf) => {
                s = s.replace('\n', if *crlf { "\r\n" } else { "\r" });
            }
            Edit::Bom => s.insert(0, '\u{feff}'),
            Edit::LongRun(i, n) => {
                let at = boundary(&s, i);
                s.insert_str(at, &"x".repeat(*n));
            }
        }
    }
    s
}

/// A valid text from `valid`, then 0 to 3 edits.
pub fn near_miss(
    valid: impl Strategy<Value = String>,
    tokens: &'static [&'static str],
) -> impl Strategy<Value = String> {
    (valid, prop::collection::vec(edit(), 0..4))
        .prop_map(move |(text, edits)| apply(text, &edits, tokens))
}

/// Text a person might type into a value: mostly printable ASCII, some spaces, quotes, escapes
/// and non-ASCII.
pub fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_./-]{0,16}",
        2 => "[ -~]{0,24}",
        1 => "[ -~éü日本😀\u{a0}]{0,12}",
        1 => "\\PC{0,8}",
    ]
}

/// How many lines `s` has, counting `\n`, `\r\n` and `\r` ends (at least 1).
pub fn line_count(s: &str) -> usize {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .lines()
        .count()
        .max(1)
}

/// The line number an error message names (`line 12`, `line_number = 12`, `:12:`), if any.
pub fn named_line(msg: &str) -> Option<usize> {
    for marker in ["line ", "line_number = ", "line: "] {
        if let Some(i) = msg.find(marker) {
            let digits: String = msg[i + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
    }
    None
}

/// Proptest settings for the fuzz tests: `cases` per run, 100 times as many with
/// FERRY_FUZZ_LONG=1 (`tests/fuzz.sh --long`), exactly PROPTEST_CASES when that is set; failures
/// are persisted under proptest-regressions/ (commit them: they are replayed first).
pub fn config(cases: u32) -> ProptestConfig {
    let long = std::env::var("FERRY_FUZZ_LONG").is_ok_and(|v| v == "1");
    let from_env = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok());
    ProptestConfig {
        cases: from_env.unwrap_or(if long { cases * 100 } else { cases }),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    }
}
