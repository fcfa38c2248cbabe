//! Invalid configurations fail at `build()` naming the field.

use std::time::Duration;

use brisk_core::Priority;
use brisk_pipeline::{BreakerConfig, EjectionConfig, Endpoint, Pipeline};

use crate::common::Echo;

#[tokio::test]
async fn build_names_the_bad_field() {
    let cases: Vec<(brisk_pipeline::PipelineBuilder<Echo>, &str)> = vec![
        (
            Pipeline::builder(Echo::default()).min_workers(5).max_workers(2),
            "min_workers",
        ),
        (Pipeline::builder(Echo::default()).min_workers(0), "min_workers"),
        (
            Pipeline::builder(Echo::default()).max_batch_size(0),
            "max_batch_size",
        ),
        (
            Pipeline::builder(Echo::default())
                .min_batch_size(3)
                .max_batch_size(2),
            "min_batch_size",
        ),
        (Pipeline::builder(Echo::default()).endpoints([]), "endpoints"),
        (
            Pipeline::builder(Echo::default()).endpoints([Endpoint::new("a").weight(0)]),
            "endpoints",
        ),
        (
            Pipeline::builder(Echo::default()).endpoints([Endpoint::new("a"), Endpoint::new("a")]),
            "endpoints",
        ),
        (Pipeline::builder(Echo::default()).capacity(0), "capacity"),
        (
            Pipeline::builder(Echo::default()).admit_share(Priority::Low, 0.0),
            "admit_share.low",
        ),
        (
            Pipeline::builder(Echo::default()).admit_share(Priority::Background, 0.9),
            "admit_share.background",
        ),
        (
            Pipeline::builder(Echo::default()).max_wait(Priority::High, Some(Duration::ZERO)),
            "max_wait.high",
        ),
        (
            Pipeline::builder(Echo::default()).latency_target(Duration::ZERO),
            "latency_target",
        ),
        (
            Pipeline::builder(Echo::default()).scale_interval(Duration::ZERO),
            "scale_interval",
        ),
        (
            Pipeline::builder(Echo::default()).scale_up_depth(0),
            "scale_up_depth",
        ),
        (
            Pipeline::builder(Echo::default()).breaker(BreakerConfig::default().window(0)),
            "breaker.window",
        ),
        (
            Pipeline::builder(Echo::default()).ejection(EjectionConfig::default().after_failures(0)),
            "ejection.after_failures",
        ),
        (
            Pipeline::builder(Echo::default()).ejection(EjectionConfig::default().max_ejection_percent(0)),
            "ejection.max_ejection_percent",
        ),
        (
            Pipeline::builder(Echo::default()).ejection(EjectionConfig::default().max_ejection_percent(101)),
            "ejection.max_ejection_percent",
        ),
        (
            Pipeline::builder(Echo::default()).health_check(Duration::ZERO, |_| async { true }),
            "health_check.interval",
        ),
        (
            Pipeline::builder(Echo::default())
                .health_check(Duration::from_secs(1), |_| async { true })
                .health_check_timeout(Duration::ZERO),
            "health_check.timeout",
        ),
    ];
    for (builder, field) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.field(), field, "{err}");
        assert!(err.to_string().contains(field), "{err}");
    }
    assert!(Pipeline::builder(Echo::default()).build().is_ok());
}

#[test]
fn build_outside_a_runtime_is_an_error() {
    let err = Pipeline::builder(Echo::default()).build().unwrap_err();
    assert_eq!(err.field(), "runtime");
}
