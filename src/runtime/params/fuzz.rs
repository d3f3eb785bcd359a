//! Fuzzing (issue 22): durations, sizes and typed parameters as people type them. Nothing panics,
//! an accepted duration fits a `std::time::Duration` (callers convert without checking), an
//! accepted number is finite, and a refusal quotes the value.

use super::*;
use crate::codec::mutate::{config, near_miss};
use proptest::prelude::*;

const TOKENS: &[&str] = &[
    "e",
    "E",
    ".",
    "-",
    "+",
    "inf",
    "NaN",
    "1e400",
    "µs",
    "h",
    "m",
    "ms",
    "d",
    " ",
    "_",
    "99999999999999999999",
    "0.",
    ".5",
    "KiB",
    "GB",
    "ti",
    "b",
];

fn duration_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            0u32..100,
            prop::sample::select(&["ms", "s", "m", "h", "d", "min", "hours", ""][..])
        )
            .prop_map(|(n, u)| format!("{n}{u}")),
        (0u32..48, 0u32..60, 0u32..60).prop_map(|(h, m, s)| format!("{h}h{m}m{s}s")),
        "[0-9]{1,3}\\.[0-9]{1,3}[smhd]?",
    ]
}

fn size_text() -> impl Strategy<Value = String> {
    (
        "[0-9]{1,6}(\\.[0-9]{1,2})?",
        prop::sample::select(&["", "b", "k", "KB", "MiB", "gi", "GB", "TiB", " MiB"][..]),
    )
        .prop_map(|(n, u)| format!("{n}{u}"))
}

fn param_type() -> impl Strategy<Value = ParamType> {
    prop::sample::select(vec![
        ParamType::String,
        ParamType::Integer,
        ParamType::Number,
        ParamType::Boolean,
        ParamType::Path,
        ParamType::Url,
        ParamType::List,
        ParamType::Duration,
        ParamType::Size,
    ])
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn fuzz_duration_accepted_fits_a_duration_refused_quotes_the_text(
        text in near_miss(duration_text(), TOKENS),
    ) {
        match parse_duration(&text) {
            Ok(secs) => prop_assert!(
                std::time::Duration::try_from_secs_f64(secs).is_ok(),
                "{:?} gave {} seconds", text, secs
            ),
            Err(e) => prop_assert!(e.contains(text.trim()), "{}", e),
        }
    }

    #[test]
    fn fuzz_duration_of_hours_minutes_seconds(h in 0u64..10_000, m in 0u64..60, s in 0u64..60) {
        let secs = parse_duration(&format!("{h}h{m}m{s}s"));
        prop_assert_eq!(secs, Ok((h * 3600 + m * 60 + s) as f64));
    }

    #[test]
    fn fuzz_size_never_panics_and_refusal_quotes_the_text(text in near_miss(size_text(), TOKENS)) {
        if let Err(e) = parse_size(&text) {
            prop_assert!(e.contains(text.trim()), "{}", e);
        }
    }

    #[test]
    fn fuzz_typed_parameter_values(
        ty in param_type(),
        text in near_miss(
            prop_oneof![duration_text(), size_text(), "[a-z]{0,8}", "-?[0-9_]{1,20}"],
            TOKENS,
        ),
    ) {
        let d = super::tests::decl("p", ty.clone());
        match parse_value(&d, &RawValue::Text(text.clone())) {
            Ok(ParamValue::Num(n)) => prop_assert!(n.is_finite(), "{:?} as {:?}: {}", text, ty, n),
            Ok(_) => {}
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }
}
