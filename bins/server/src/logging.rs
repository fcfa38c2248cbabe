//! Logs: text or JSON lines, filtered by `LOG_LEVEL`; each request's lines
//! carry its `request_id` (from the request span).

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// Installs the global logger for `settings` (once; later calls do nothing).
pub fn init_logging(settings: &Settings) {
    // The filter was checked when the settings were resolved.
    let filter = EnvFilter::builder()
        .parse(&settings.log_level)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match settings.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
