//! `brisk-server`: see the crate docs of `brisk_server` and `--help`.

use std::process::ExitCode;

use brisk_server::{Settings, init_logging, start};

fn main() -> ExitCode {
    let settings = match Settings::from_process() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("brisk-server: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("brisk-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // Secrets are redacted by the settings' Debug.
        tracing::info!(settings = ?settings, "starting");
        let mut server = match start(settings).await {
            Ok(server) => server,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                eprintln!("brisk-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        server.stop_on(shutdown_signal());
        server.wait().await;
        ExitCode::SUCCESS
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
