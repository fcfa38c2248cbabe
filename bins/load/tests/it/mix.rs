use brisk_load::{LoadError, Mix};

fn field_of(toml: &str) -> (String, String) {
    match Mix::from_toml_str(toml, "t.toml") {
        Err(LoadError::Mix {
            source_name,
            field,
            message,
        }) => {
            assert_eq!(source_name, "t.toml");
            (field, message)
        }
        other => panic!("expected a mix error for {toml:?}, got {other:?}"),
    }
}

#[test]
fn errors_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[[request]]\nmethod = \"FETCH\"\npath = \"/\"\n",
            "request[0].method",
            "FETCH",
        ),
        (
            "[[request]]\npath = \"/\"\n[[request]]\npath = \"/b\"\nweight = 0\n",
            "request[1].weight",
            "1 to",
        ),
        ("[[request]]\nmethod = \"GET\"\n", "request[0].path", "missing"),
        ("[[request]]\npath = \"api\"\n", "request[0].path", "start with /"),
        (
            "[[request]]\npath = \"/\"\nbody = '{\"a\": \"{{nope}}\"}'\n",
            "request[0].body",
            "unknown placeholder",
        ),
        (
            "[[request]]\npath = \"/\"\nbody = '{{seq'\n",
            "request[0].body",
            "unclosed",
        ),
        (
            "[sla]\np99_ms = -1\n[[request]]\npath = \"/\"\n",
            "sla.p99_ms",
            "positive",
        ),
        (
            "[sla]\nmax_error_rate = 2\n[[request]]\npath = \"/\"\n",
            "sla.max_error_rate",
            "between 0 and 1",
        ),
        (
            "[[request]]\npath = \"/\"\nweight = \"heavy\"\n",
            "request[0].weight",
            "",
        ),
        (
            "[[request]]\npath = \"/\"\n[[request]]\npath = \"/\"\nmetod = \"GET\"\n",
            "request[1].metod",
            "unknown field",
        ),
        (
            "[[request]]\npath = \"/\"\nheaders = { \"bad header\" = \"x\" }\n",
            "request[0].headers.bad header",
            "",
        ),
        ("[sla]\np99_ms = 5\n", "request", "no [[request]]"),
    ];
    for (toml, field, needle) in cases {
        let (got, message) = field_of(toml);
        assert_eq!(&got, field, "for {toml:?} ({message})");
        assert!(message.contains(needle), "{message:?} should mention {needle:?}");
    }
}

#[test]
fn the_error_message_names_file_and_field() {
    let err = Mix::from_toml_str("[[request]]\nmethod = \"FETCH\"\npath = \"/\"\n", "mine.toml").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("mine.toml") && text.contains("request[0].method"),
        "{text}"
    );
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let err = Mix::from_file(std::path::Path::new("/nonexistent/mix.toml")).unwrap_err();
    assert!(matches!(err, LoadError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/mix.toml"));
}

#[test]
fn renders_placeholders() {
    let mix = Mix::from_toml_str(
        "[[request]]\nmethod = \"post\"\npath = \"/p/{{seq}}\"\nbody = '{\"w\": \"{{word}}\", \"n\": {{rand}}, \"t\": {{now_ms}}}'\n",
        "t",
    )
    .unwrap();
    let spec = &mix.requests()[0];
    assert_eq!(spec.method(), http::Method::POST);
    let (path, body) = spec.render(42, &mut fastrand::Rng::with_seed(1));
    assert_eq!(path, "/p/42");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["w"].as_str().is_some_and(|w| !w.is_empty()));
    assert!(v["n"].is_u64() && v["t"].as_u64().unwrap() > 1_700_000_000_000);
    assert!(
        spec.headers()
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/json")
    );
}
