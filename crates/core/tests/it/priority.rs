use brisk_core::Priority;

#[test]
fn serde_uses_lowercase_names_and_parses_any_case() {
    assert_eq!(serde_json::to_string(&Priority::Urgent).unwrap(), "\"urgent\"");
    let p: Priority = serde_json::from_str("\"BACKGROUND\"").unwrap();
    assert_eq!(p, Priority::Background);
    let all: Vec<Priority> = serde_json::from_str(r#"["low","Normal","high"]"#).unwrap();
    assert_eq!(all, [Priority::Low, Priority::Normal, Priority::High]);
    let err = serde_json::from_str::<Priority>("\"asap\"").unwrap_err();
    assert!(err.to_string().contains("invalid priority \"asap\""), "{err}");
}

#[test]
fn max_is_most_urgent() {
    assert_eq!(Priority::ALL.into_iter().max(), Some(Priority::Urgent));
    assert_eq!(Priority::ALL.into_iter().min(), Some(Priority::Background));
    assert_eq!(Priority::Normal.to_string(), "normal");
}
