use super::*;

/// A declaration of an optional parameter with no default (shared with the fuzz tests).
pub(super) fn decl(name: &str, ty: ParamType) -> ParamDecl {
    ParamDecl {
        name: name.into(),
        ty,
        default: None,
        required: false,
        doc: "doc".into(),
        secret: false,
        choices: None,
        env: None,
    }
}

#[test]
fn durations_and_sizes() {
    assert_eq!(parse_duration("90s").unwrap(), 90.0);
    assert_eq!(parse_duration("2h").unwrap(), 7200.0);
    assert_eq!(parse_duration("1h30m").unwrap(), 5400.0);
    assert_eq!(parse_duration("500ms").unwrap(), 0.5);
    assert_eq!(parse_duration("12").unwrap(), 12.0);
    assert!(parse_duration("soon").is_err());
    assert!(parse_duration("5 parsecs").is_err());
    assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
    assert_eq!(parse_size("1.5GB").unwrap(), 1_500_000_000);
    assert_eq!(parse_size("100k").unwrap(), 100_000);
    assert_eq!(parse_size("4096").unwrap(), 4096);
    assert!(parse_size("lots").is_err());
    assert_eq!(format_size(1536), "1.50 KiB");
}

/// Found by fuzz_duration_accepted_fits_a_duration_refused_quotes_the_text and
/// fuzz_typed_parameter_values: "1e400", "inf" and a huge count of seconds were accepted,
/// and `Duration::from_secs_f64` panics on them (ferry.exec's timeout, a GCS store's
/// timeout option, FERRY_PROGRESS_INTERVAL).
#[test]
fn regression_durations_beyond_a_duration_are_refused() {
    for text in [
        "1e400",
        "inf",
        "infinity",
        "999999999999999999990s\n999999999999999999990s",
    ] {
        let err = parse_duration(text).unwrap_err();
        assert!(err.contains(text.trim()), "{err}");
    }
    assert!(parse_duration("NaN").is_err());
    assert_eq!(parse_duration("584542046090y").ok(), None);
    assert!(parse_duration("18446744073709551615").is_err());
    assert_eq!(parse_duration("100000d").unwrap(), 8_640_000_000.0);
}

#[test]
fn numbers_are_finite() {
    let d = decl("n", ParamType::Number);
    for text in ["NaN", "inf", "-infinity", "1e400"] {
        let err = parse_value(&d, &RawValue::Text(text.into())).unwrap_err();
        assert!(err.contains("is not a number"), "{err}");
    }
    assert_eq!(
        parse_value(&d, &RawValue::Text("1e300".into())).unwrap(),
        ParamValue::Num(1e300)
    );
}

#[test]
fn typed_values() {
    let d = decl("n", ParamType::Integer);
    assert_eq!(
        parse_value(&d, &RawValue::Text("42".into())).unwrap(),
        ParamValue::Int(42)
    );
    assert!(parse_value(&d, &RawValue::Text("4x".into())).is_err());
    let l = decl("ks", ParamType::List);
    assert_eq!(
        parse_value(&l, &RawValue::Text("ks1, ks2.t".into())).unwrap(),
        ParamValue::List(vec!["ks1".into(), "ks2.t".into()])
    );
    let mut c = decl("mode", ParamType::String);
    c.choices = Some(vec!["direct".into(), "csv".into()]);
    assert!(parse_value(&c, &RawValue::Text("zip".into())).is_err());
    let u = decl("u", ParamType::Url);
    assert!(parse_value(&u, &RawValue::Text("not a url".into())).is_err());
}

#[test]
fn resolve_reports_every_problem_and_unknown_names() {
    let mut a = decl("a", ParamType::Integer);
    a.required = true;
    let b = decl("b", ParamType::Boolean);
    let mut raw = RawParams::default();
    raw.values
        .insert("b".into(), (RawValue::Text("maybe".into()), "command line"));
    raw.values
        .insert("zzz".into(), (RawValue::Text("1".into()), "command line"));
    let err = resolve(&[a, b], &raw).err().unwrap();
    assert!(err.message.contains("missing required parameter 'a'"));
    assert!(err.message.contains("'maybe' is not a boolean"));
    assert!(err.message.contains("unknown parameter 'zzz'"));
}

#[test]
fn hash_ignores_secret_values() {
    let mut s = decl("token", ParamType::String);
    s.secret = true;
    let decls = vec![s];
    let mut v1 = BTreeMap::new();
    v1.insert("token".to_string(), ParamValue::Str("one".into()));
    let mut v2 = BTreeMap::new();
    v2.insert("token".to_string(), ParamValue::Str("two".into()));
    assert_eq!(params_hash(&decls, &v1), params_hash(&decls, &v2));
}
