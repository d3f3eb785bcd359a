//! Fuzzing (issue 22): store URLs as people paste them (file://, memory://, s3://, gs://, az://,
//! Azure blob https URLs with a SAS), opened without the check request so nothing is contacted.
//! Nothing panics; a refusal is an invalid_input or not_found error naming the store; neither a
//! refusal nor the store's display shows the URL's password or SAS signature.

use proptest::prelude::*;

use super::{OpenOptions, open};
use crate::codec::mutate::{config, near_miss};
use crate::runtime::error::ErrorKind;

const PASSWORD: &str = "Pw0rdSecret";
const SIGNATURE: &str = "SigSecret0";

const TOKENS: &[&str] = &[
    "//",
    ":",
    "@",
    "%",
    "%2F",
    "%zz",
    "..",
    "?",
    "#",
    " ",
    "[",
    "]",
    ":99999",
    ":0",
    "\\",
    "é",
    "xn--",
    "s3://",
    "file:",
    "///",
    ".blob.core.windows.net",
    "?sig=",
    "&",
    "_",
    "-",
    "A",
];

fn store_url() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(
        &[
            "file", "memory", "s3", "s3a", "gs", "az", "azure", "abfs", "https", "http", "ftp",
            "S3",
        ][..],
    );
    let host = prop_oneof![
        "[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]",
        Just("ACCOUNT.blob.core.windows.net".to_string()),
        Just("127.0.0.1:10000".to_string()),
        Just(String::new()),
        "[A-Za-z0-9_.-]{0,70}",
    ];
    let path = prop::collection::vec("[a-zA-Z0-9_.-]{0,10}", 0..4).prop_map(|p| p.join("/"));
    let userinfo = prop::sample::select(&["", "user@", "user:Pw0rdSecret@"][..]);
    let query = prop::sample::select(
        &[
            "",
            "?sv=2022-11-02&sig=SigSecret0",
            "?sig=SigSecret0",
            "?x=1",
        ][..],
    );
    (scheme, userinfo, host, path, query).prop_map(|(s, u, h, p, q)| format!("{s}://{u}{h}/{p}{q}"))
}

/// The secrets a URL carries as its parser reads it: the password, the SAS signature. Text
/// that only looks like one (`file: //u:p@h` is a folder name) is not masked; an unparsable URL
/// is shown without anything before an `@` or after a `?`, so the generator's secrets must not
/// show then.
fn secrets(url: &str) -> Vec<String> {
    match url::Url::parse(url.trim()) {
        Ok(u) if !u.cannot_be_a_base() => {
            let mut out: Vec<String> = u.password().map(str::to_string).into_iter().collect();
            out.extend(
                u.query_pairs()
                    .filter(|(k, _)| k == "sig")
                    .map(|(_, v)| v.into_owned()),
            );
            // A shorter piece of the generator's secrets ("er") turns up in ordinary words.
            out.retain(|s| s.len() >= 5);
            out
        }
        _ => {
            let mut out = Vec::new();
            if url.contains(&format!("{PASSWORD}@")) {
                out.push(PASSWORD.to_string());
            }
            // Masked when it is in the query; the same text before the `?` is a path.
            if url
                .find(['?', '#'])
                .is_some_and(|q| url[q..].contains(SIGNATURE) && !url[..q].contains(SIGNATURE))
            {
                out.push(SIGNATURE.to_string());
            }
            out
        }
    }
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
}

fn check(url: &str) -> Result<(), TestCaseError> {
    let opts = OpenOptions {
        no_probe: true,
        ..OpenOptions::default()
    };
    let secrets = secrets(url);
    match RUNTIME.with(|rt| rt.block_on(open(url, &opts))) {
        Ok(store) => {
            for s in &secrets {
                prop_assert!(
                    !store.display.contains(s.as_str()),
                    "display shows {}: {}",
                    s,
                    store.display
                );
            }
        }
        Err(e) => {
            let shown = e.one_line();
            prop_assert!(
                matches!(e.kind, ErrorKind::InvalidInput | ErrorKind::NotFound),
                "not a clear refusal: {}",
                shown
            );
            prop_assert!(shown.contains("store "), "names no store: {}", shown);
            for s in &secrets {
                prop_assert!(
                    !shown.contains(s.as_str()),
                    "refusal shows {}: {}",
                    s,
                    shown
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn fuzz_store_urls_open_or_refuse_clearly(url in near_miss(store_url(), TOKENS)) {
        check(&url)?;
    }
}

/// Found by fuzz_store_urls_open_or_refuse_clearly: a URL that did not parse was quoted whole
/// in the refusal, password and SAS signature included (they are masked only once parsed).
#[test]
fn regression_unparsable_url_refusal_hides_password_and_query() {
    for url in [
        "file://user:Pw0rdSecret@a0a/",
        "s3://user:Pw0rd/Secret@bucket:99999/x",
        "https://acct.blob.core.windows.net:x/c?sv=1&sig=SigSecret0",
        "emory://user:Pw0rdSecret@host/x",
        "//user:Pw0rdSecret@0aa/",
        "user:Pw0rdSecret@host",
        "s/user:Pw0rdSecret@0aa//",
        "s3://user:Pw0rdSecret?@bucket/x",
        "s3://user:Pw0rd/Secret?x@bucket:99999/x",
    ] {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let opts = OpenOptions {
            no_probe: true,
            ..OpenOptions::default()
        };
        let shown = rt.block_on(open(url, &opts)).err().unwrap().one_line();
        assert!(shown.contains("store "), "{shown}");
        assert!(
            !shown.contains("Secret") && !shown.contains("SigSecret0"),
            "{shown}"
        );
    }
}

/// Found by fuzz_store_urls_open_or_refuse_clearly: the URL parser silently drops tabs and line
/// breaks, so a URL with a pasted line break opened another prefix than the one written.
#[test]
fn regression_control_characters_in_a_url_are_refused() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let opts = OpenOptions {
        no_probe: true,
        ..OpenOptions::default()
    };
    let e = rt
        .block_on(open("memory://fuzz/pre\nfix", &opts))
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(
        e.message.contains(
            "store memory://...: the URL holds an invisible character ('\\n') at character 18"
        ),
        "{}",
        e.message
    );
    // Surrounding blanks (a trailing newline from a file) stay harmless.
    assert!(rt.block_on(open("memory://fuzz/prefix\n", &opts)).is_ok());
    // So is an invisible byte order mark, which made "relative URL without a base".
    let e = rt
        .block_on(open("\u{feff}memory://fuzz/x", &opts))
        .err()
        .unwrap();
    assert!(
        e.message.contains("('\\u{feff}') at character 1"),
        "{}",
        e.message
    );
}
