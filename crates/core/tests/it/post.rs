use brisk_core::{Engagement, Post, PostError, PostLimits, Timestamp};

fn post(text: &str) -> Post {
    Post::new("id-1", text, Timestamp::from_unix_millis(1_795_343_400_000))
}

#[test]
fn each_rule_is_named() {
    let limits = PostLimits::default().max_text_chars(10).max_field_chars(5);
    assert_eq!(post("ok").validate(&limits), Ok(()));
    assert_eq!(
        post("").validate(&limits),
        Err(PostError::Empty { field: "text" })
    );
    assert_eq!(
        post(" \n\t").validate(&limits),
        Err(PostError::Empty { field: "text" })
    );
    let mut no_id = post("ok");
    no_id.id.clear();
    assert_eq!(no_id.validate(&limits), Err(PostError::Empty { field: "id" }));

    let err = post("héllo wörld!").validate(&limits).unwrap_err();
    assert_eq!(
        err,
        PostError::TooLong {
            field: "text",
            len: 12,
            max: 10
        }
    );
    assert_eq!(err.rule(), "too_long");
    // Characters, not bytes: ten two-byte characters fit a ten-character limit.
    assert_eq!(post(&"é".repeat(10)).validate(&limits), Ok(()));

    let err = post("a\0b").validate(&limits).unwrap_err();
    assert_eq!(
        err,
        PostError::NulByte {
            field: "text",
            offset: 1
        }
    );
    assert_eq!(err.to_string(), "post text contains a NUL byte at byte offset 1");
    assert_eq!(err.field(), "text");

    let err = post("ok").with_author("\0").validate(&limits).unwrap_err();
    assert_eq!(err.field(), "author");
    let err = post("ok").with_source("twitter").validate(&limits).unwrap_err();
    assert_eq!(
        err,
        PostError::TooLong {
            field: "source",
            len: 7,
            max: 5
        }
    );
    assert_eq!(err.rule(), "too_long");
    let err = post("ok").with_language("e\0").validate(&limits).unwrap_err();
    assert_eq!(err.rule(), "nul_byte");
    assert_eq!(PostError::Empty { field: "id" }.rule(), "empty");
}

#[test]
fn json_round_trip_with_optional_fields() {
    let p = post("Shipping $ABC 🚀")
        .with_author("@abc")
        .with_source("twitter")
        .with_engagement(Engagement::new(10, 2, 1, 500))
        .with_language("en");
    let json = serde_json::to_string(&p).unwrap();
    assert!(
        json.contains("\"created_at\":\"2026-11-22T10:30:00.000Z\""),
        "{json}"
    );
    let back: Post = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    assert_eq!(back.engagement.unwrap().interactions(), 13);

    let minimal: Post = serde_json::from_str(r#"{"id":"9","text":"hi","created_at":1795343400000}"#).unwrap();
    assert_eq!(minimal.author, "");
    assert_eq!(minimal.engagement, None);
    assert!(!serde_json::to_string(&minimal).unwrap().contains("engagement"));

    let partial: Engagement = serde_json::from_str(r#"{"likes":4}"#).unwrap();
    assert_eq!(partial, Engagement::new(4, 0, 0, 0));
    assert!(serde_json::from_str::<Post>(r#"{"id":"9","text":"hi","created_at":"yesterday"}"#).is_err());
}

#[test]
fn content_hash_depends_on_text_only() {
    let a = post("same").with_author("x");
    let b = post("same").with_author("y");
    assert_eq!(a.content_hash(), b.content_hash());
    assert_ne!(a.content_hash(), post("other").content_hash());
}
