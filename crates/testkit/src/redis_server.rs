//! Redis: owned servers, the shared server, and one fresh key prefix per
//! test.
//!
//! `redis-server` runs in the foreground as a direct child (in its own
//! process group) rather than with `--daemonize yes`: an early exit (a port
//! clash, a bad option) is then seen at once through `try_wait` and its exit
//! status instead of as a 20 s readiness timeout, and `stop()` is a plain
//! kill-and-reap with no pid file to trust. We write the child's pid to
//! `redis.pid` ourselves, before waiting for it, so the watchdog can stop
//! the current process even after restarts. Persistence is off
//! (`--save '' --appendonly no`): a private Redis server comes back empty
//! after a restart.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::TestkitError;
use crate::error::mask_password;
use crate::process::{
    READY_TIMEOUT, Watchdog, create_server_dir, file_len, find_on_path, is_executable, shell_quote,
    start_on_free_port, tail_since, unique_parts,
};
use crate::skip::{SKIP_REASON, skip, skip_services};

const SERVER: &str = "Redis";
const PACKAGE: &str = "redis-server";
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A fresh key prefix on the shared Redis server, for one test.
///
/// Returns `None`, and records the skip, when `BRISK_SKIP_SERVICES` is set
/// (see [`skip_services`]), so a test starts with:
///
/// ```
/// let Some(kv) = brisk_testkit::redis() else { return };
/// assert!(kv.key("user:1").starts_with(kv.prefix()));
/// ```
///
/// The shared server is started on first use in this process, on a free
/// port on 127.0.0.1 in a fresh temporary directory, and torn down by a
/// watchdog once the process exits. If the environment variable `REDIS_URL`
/// is set, that server is used instead. Every call gets a new prefix
/// (`brisk:t:<pid>:<n>:<random>:`); its keys are deleted when the returned
/// handle is dropped. Tests that need a whole server (`FLUSHDB`, `CONFIG`,
/// restarts) use [`redis_server()`] instead.
///
/// # Panics
///
/// If no server can be started or reached: a test that needs Redis fails
/// loudly rather than passing without it. The message says why (for a
/// missing binary: which package to install; for a failed start: the end of
/// the server log).
#[must_use]
#[track_caller]
pub fn redis() -> Option<TestRedis> {
    static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();

    if skip_services() {
        skip(SKIP_REASON);
        return None;
    }
    match SHARED.get_or_init(|| Shared::start().map_err(|err| err.report())) {
        Ok(shared) => Some(TestRedis::new(shared.url.clone())),
        Err(report) => panic!("brisk-testkit: no Redis server for tests: {report}"),
    }
}

/// A private Redis server for one test, which the test may stop and restart.
///
/// Returns `None`, and records the skip, when `BRISK_SKIP_SERVICES` is set.
/// Otherwise the same as [`RedisServer::start`], except that a failure
/// panics:
///
/// ```
/// let Some(mut server) = brisk_testkit::redis_server() else { return Ok(()) };
/// server.restart()?;
/// # Ok::<(), brisk_testkit::TestkitError>(())
/// ```
///
/// # Panics
///
/// If the server cannot be started; the message says why.
#[must_use]
#[track_caller]
pub fn redis_server() -> Option<RedisServer> {
    if skip_services() {
        skip(SKIP_REASON);
        return None;
    }
    match RedisServer::start() {
        Ok(server) => Some(server),
        Err(err) => panic!("brisk-testkit: {}", err.report()),
    }
}

/// A Redis server owned by one test, on a free port on 127.0.0.1 with its
/// own directory and no persistence.
///
/// [`stop`](Self::stop), [`start_again`](Self::start_again) and
/// [`restart`](Self::restart) let a test see what its code does while Redis
/// is away. The server comes back on the same port but empty. Dropping the
/// server stops it and deletes its directory (a watchdog does the same if
/// the test process dies first).
///
/// This does not check `BRISK_SKIP_SERVICES`; tests usually go through
/// [`redis_server()`] which does.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    settings: Vec<(String, String)>,
    /// The running server process, if any. A mutex so that
    /// [`is_running`](Self::is_running) can reap it through `&self`.
    child: Mutex<Option<Child>>,
    /// Dropped after `Drop::drop` has stopped the server: removes `dir`.
    _watchdog: Watchdog,
}

impl RedisServer {
    /// Starts a server with the default settings; see
    /// [`RedisServer::builder`] for the options.
    ///
    /// # Errors
    ///
    /// [`TestkitError::BinaryNotFound`] if `redis-server` is not installed
    /// (the message names the `redis-server` package), or another variant if
    /// the server cannot be set up or does not answer `PING` within 20 s
    /// ([`TestkitError::StartFailed`] carries the end of its log).
    pub fn start() -> Result<Self, TestkitError> {
        Self::builder().start()
    }

    /// A builder to choose the binary or add server settings before
    /// starting.
    #[must_use]
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// The server's URL, `redis://127.0.0.1:<port>/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The TCP port on 127.0.0.1; the same across restarts.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is running.
    #[must_use]
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Stops the server (kills the process, as a crash would) and waits for
    /// it to exit. Its data is gone. Does nothing if it is already stopped.
    ///
    /// # Errors
    ///
    /// [`TestkitError::Io`] if the process cannot be waited for.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        let child = self
            .child
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut child) = child {
            // Fails only if it has already exited and been reaped: fine.
            let _ = child.kill();
            child
                .wait()
                .map_err(|err| TestkitError::io("waiting for redis-server to exit", err))?;
        }
        let _ = std::fs::remove_file(self.pid_file());
        Ok(())
    }

    /// Starts a stopped server again on the same port, and waits until it
    /// answers `PING`. Does nothing if it is running. (Not `start`: that name
    /// is the constructor, [`RedisServer::start`].)
    ///
    /// # Errors
    ///
    /// [`TestkitError::StartFailed`], with the end of the server log, if it
    /// exits or does not answer within 20 s (for example because another
    /// process took the port while it was stopped).
    pub fn start_again(&mut self) -> Result<(), TestkitError> {
        if self.is_running() {
            return Ok(());
        }
        let log = self.log_path();
        let offset = file_len(&log);
        let open_log = || std::fs::OpenOptions::new().create(true).append(true).open(&log);
        let (stdout, stderr) = open_log()
            .and_then(|out| Ok((out, open_log()?)))
            .map_err(|err| TestkitError::io(format!("opening {}", log.display()), err))?;
        let mut command = Command::new(&self.binary);
        command
            .current_dir(&self.dir)
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir);
        for (name, value) in &self.settings {
            command.arg(format!("--{name}")).arg(value);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(|err| {
                if err.kind() == std::io::ErrorKind::NotFound {
                    not_found(&self.binary)
                } else {
                    TestkitError::io(format!("spawning {}", self.binary.display()), err)
                }
            })?;
        if let Err(err) = std::fs::write(self.pid_file(), child.id().to_string()) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TestkitError::io(
                format!("writing {}", self.pid_file().display()),
                err,
            ));
        }
        let ready = self.wait_ready(&mut child);
        *self.child.get_mut().unwrap_or_else(PoisonError::into_inner) = Some(child);
        if let Err(reason) = ready {
            let _ = self.stop();
            return Err(TestkitError::StartFailed {
                server: SERVER,
                port: self.port,
                reason,
                log_tail: tail_since(&log, offset, 30),
                log,
            });
        }
        Ok(())
    }

    /// [`stop`](Self::stop), then [`start_again`](Self::start_again).
    ///
    /// # Errors
    ///
    /// As for those two.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop()?;
        self.start_again()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("redis.pid")
    }

    /// Polls until the server answers `PING`; `Err(reason)` if it exits or
    /// the time runs out.
    fn wait_ready(&self, child: &mut Child) -> Result<(), String> {
        let url = self.url();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Err(format!("redis-server exited ({status})")),
                Ok(None) => {}
                Err(err) => return Err(format!("could not check on redis-server: {err}")),
            }
            match ping(&url, Duration::from_millis(500)) {
                Ok(()) => return Ok(()),
                Err(err) if Instant::now() >= deadline => {
                    return Err(format!("no answer to PING within {READY_TIMEOUT:?}: {err}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Stop and reap our child here; the watchdog (dropped next) then
        // removes the directory.
        let _ = self.stop();
    }
}

/// Options for a [`RedisServer`], from [`RedisServer::builder`].
#[derive(Debug, Clone, Default)]
pub struct RedisServerBuilder {
    binary: Option<PathBuf>,
    settings: Vec<(String, String)>,
}

impl RedisServerBuilder {
    /// The `redis-server` program to run.
    ///
    /// Default: `redis-server` on `PATH`.
    #[must_use]
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Sets a server option, passed as `--<name> <value>` and kept across
    /// restarts, e.g. `.setting("maxmemory", "64mb")`.
    ///
    /// Always set (and not to be overridden here): `--bind 127.0.0.1`,
    /// `--port <chosen>`, `--dir <its directory>`, `--save ''`,
    /// `--appendonly no`, `--daemonize no`.
    #[must_use]
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Starts the server on a free port, retrying with another port if the
    /// chosen one was taken in the meantime. Returns once it answers `PING`.
    ///
    /// # Errors
    ///
    /// As for [`RedisServer::start`].
    pub fn start(self) -> Result<RedisServer, TestkitError> {
        let binary = match self.binary {
            Some(path) if is_executable(&path) => path,
            Some(path) => return Err(not_found(&path)),
            None => find_on_path("redis-server").ok_or_else(|| TestkitError::BinaryNotFound {
                binary: "redis-server".to_owned(),
                searched: "on PATH".to_owned(),
                package: PACKAGE,
            })?,
        };
        let dir = create_server_dir("redis", false)?;
        let watchdog = Watchdog::guard_dir(&dir, &cleanup_script(&dir))?;
        let mut server = RedisServer {
            binary,
            dir,
            port: 0,
            settings: self.settings,
            child: Mutex::new(None),
            _watchdog: watchdog,
        };
        start_on_free_port(|port| {
            server.port = port;
            server.start_again()
        })?;
        Ok(server)
    }
}

fn not_found(path: &Path) -> TestkitError {
    TestkitError::BinaryNotFound {
        binary: path.display().to_string(),
        searched: "(no executable file at that path)".to_owned(),
        package: PACKAGE,
    }
}

/// The watchdog's teardown: kill the server whose pid we recorded (if that
/// pid is still a Redis process), then remove the directory.
fn cleanup_script(dir: &Path) -> String {
    let pid_file = shell_quote(dir.join("redis.pid").as_os_str());
    format!(
        "if pid=$(cat {pid_file} 2>/dev/null) && {{ [ ! -d /proc/self ] || grep -qa redis \"/proc/$pid/cmdline\"; }}; then\n\
         kill -KILL \"$pid\" 2>/dev/null\nfi\nrm -rf {}",
        shell_quote(dir.as_os_str())
    )
}

/// Connects to `url` and sends `PING`.
fn ping(url: &str, timeout: Duration) -> redis::RedisResult<()> {
    let mut connection = connect(url, timeout)?;
    redis::cmd("PING").query::<String>(&mut connection).map(drop)
}

fn connect(url: &str, timeout: Duration) -> redis::RedisResult<redis::Connection> {
    let connection = redis::Client::open(url)?.get_connection_with_timeout(timeout)?;
    connection.set_read_timeout(Some(timeout))?;
    connection.set_write_timeout(Some(timeout))?;
    Ok(connection)
}

/// The process-wide server behind [`redis()`].
#[derive(Debug)]
struct Shared {
    url: String,
    /// The server we started, if `REDIS_URL` did not name one; kept for the
    /// life of the process and torn down by its watchdog.
    _server: Option<RedisServer>,
}

impl Shared {
    /// `REDIS_URL` if set, else a server started for this process.
    fn start() -> Result<Self, TestkitError> {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.is_empty() => {
                if let Err(err) = redis::Client::open(url.as_str()) {
                    return Err(TestkitError::InvalidUrl {
                        var: "REDIS_URL",
                        value: mask_password(&url),
                        reason: err.to_string(),
                    });
                }
                ping(&url, Duration::from_secs(10)).map_err(|err| TestkitError::Query {
                    server: SERVER,
                    url: mask_password(&url),
                    action: "PING (REDIS_URL)".to_owned(),
                    source: Box::new(err),
                })?;
                Ok(Self { url, _server: None })
            }
            _ => {
                let server = RedisServer::start()?;
                Ok(Self {
                    url: server.url(),
                    _server: Some(server),
                })
            }
        }
    }
}

/// A fresh key prefix on a Redis server, for one test, from [`redis()`].
///
/// Tests share the server, so they keep to their own keys: build every key
/// with [`key`](Self::key). Dropping the handle deletes the keys under the
/// prefix, best-effort (`SCAN MATCH <prefix>*` and `DEL`).
#[derive(Debug)]
pub struct TestRedis {
    url: String,
    prefix: String,
}

impl TestRedis {
    fn new(url: String) -> Self {
        let (pid, counter, random) = unique_parts();
        Self {
            url,
            prefix: format!("brisk:t:{pid}:{counter}:{random:08x}:"),
        }
    }

    /// The server's URL, e.g. `redis://127.0.0.1:41235/` (or `REDIS_URL`).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// This test's key prefix, `brisk:t:<pid>:<counter>:<random>:`.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `name` under this test's prefix: `key("a")` is `<prefix>a`.
    #[must_use]
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn delete_keys(&self) -> redis::RedisResult<()> {
        let mut connection = connect(&self.url, CLEANUP_TIMEOUT)?;
        // The prefix is made of `[a-z0-9:]` only: nothing to escape for MATCH.
        let pattern = format!("{}*", self.prefix);
        let mut cursor = 0_u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query(&mut connection)?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(keys).exec(&mut connection)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // Best-effort: the server may be gone, and keys left on a throwaway
        // server go with it.
        let _ = self.delete_keys();
    }
}
