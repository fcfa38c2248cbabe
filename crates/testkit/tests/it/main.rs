//! brisk-testkit's integration tests: real servers, through the public API.
//!
//! What depends on the environment or on the process ending is checked in
//! child processes: `DATABASE_URL` / `REDIS_URL` and teardown after a normal
//! exit or an abort run as scenarios of the package's
//! `brisk-testkit-scenario` binary (`run_scenario`, `scenario_command`);
//! `BRISK_SKIP_SERVICES` re-runs some of this binary's own tests with it set
//! (`run_self`).

mod env_urls;
mod errors;
mod postgres;
mod redis;
mod skipping;
mod teardown;

use std::process::{Command, Output};

/// Runs `tests` of this test binary in a child process with `env` set (and
/// the service variables of this process cleared first).
fn run_self(tests: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("current test binary"));
    command
        .args(tests)
        .args(["--exact", "--nocapture", "--test-threads=2"]);
    output_of(with_env(command, env), &format!("{tests:?}"))
}

/// Runs the scenario `args` of `brisk-testkit-scenario` in a child process
/// with `env` set (and the service variables of this process cleared first).
fn run_scenario(args: &[&str], env: &[(&str, &str)]) -> Output {
    output_of(scenario_command(args, env), &format!("{args:?}"))
}

/// The command for the scenario `args` of `brisk-testkit-scenario`, with
/// `env` set (and the service variables of this process cleared first).
fn scenario_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_brisk-testkit-scenario"));
    command.args(args);
    with_env(command, env)
}

/// Asserts that the scenario `args` succeeded: exit status 0 and its
/// `scenario <args>: ok` as the last line of its stdout.
fn assert_scenario_ok(output: &Output, args: &[&str]) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}\n{stdout}", output.status);
    let ok = format!("scenario {}: ok", args.join(" "));
    assert_eq!(stdout.lines().last(), Some(ok.as_str()), "{stdout}");
}

fn with_env(mut command: Command, env: &[(&str, &str)]) -> Command {
    command
        .env_remove("BRISK_SKIP_SERVICES")
        .env_remove("BRISK_SKIP_LOG")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .envs(env.iter().copied());
    command
}

/// Runs `command` to its end, showing its output (on failure) under `what`.
fn output_of(mut command: Command, what: &str) -> Output {
    let output = command.output().expect("run a child process");
    eprintln!(
        "--- child {what} ({}) stdout:\n{}\n--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `future` to completion on a fresh current-thread runtime, for the
/// plain (non-async) tests.
fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

/// Connects to PostgreSQL at `url`, driving the connection on a task.
async fn pg_connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A sync Redis connection to `url`.
fn redis_connect(url: &str) -> ::redis::RedisResult<::redis::Connection> {
    ::redis::Client::open(url)?.get_connection_with_timeout(std::time::Duration::from_secs(5))
}
