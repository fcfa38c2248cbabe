//! PostgreSQL: owned servers, the shared server, and one fresh database per
//! test.
//!
//! A server is `initdb --no-sync` into a fresh directory plus `pg_ctl start
//! -w`, with durability switched off (`fsync`, `synchronous_commit`,
//! `full_page_writes`): test data never has to survive a power cut, and
//! commits get cheaper. `stop()` is a *fast* (clean) shutdown, so committed
//! rows do survive a `restart()`; the watchdog's teardown is an *immediate*
//! one, since the directory is deleted right after. Settings go into the
//! cluster's `postgresql.conf` and only the port is passed at each start, so
//! a restart comes back exactly as configured. PostgreSQL refuses to run as
//! root, so as root every PostgreSQL program runs as the `postgres` user
//! through `runuser`, in a directory chowned to that user.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::TestkitError;
use crate::error::mask_password;
use crate::pg_client;
use crate::process::{
    READY_TIMEOUT, Watchdog, create_server_dir, file_len, find_on_path, is_executable, is_root, run,
    shell_quote, start_on_free_port, tail_since, unique_parts,
};
use crate::skip::{SKIP_REASON, skip, skip_services};

const SERVER: &str = "PostgreSQL";
const PACKAGE: &str = "postgresql";
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
const DROP_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings every server starts with; [`PostgresServerBuilder::setting`]
/// adds to or overrides them.
///
/// A throwaway server trades durability for speed, legitimately: its data
/// never has to survive a power cut or an OS crash (a clean `stop()` /
/// `restart()` still keeps every committed row). `fsync = off` and
/// `synchronous_commit = off`: a commit waits for no disk flush;
/// `full_page_writes = off`: no full pages in the WAL after a checkpoint;
/// `wal_level = minimal` (which needs `max_wal_senders = 0`): no WAL for
/// data loaded into a table created or truncated in the same transaction,
/// and less WAL for everything else, since no replica or archive reads it.
const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("listen_addresses", "127.0.0.1"),
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("wal_level", "minimal"),
    ("max_wal_senders", "0"),
    // Room for connection-pool tests and benches.
    ("max_connections", "200"),
];

/// A fresh database on the shared PostgreSQL server, for one test.
///
/// Returns `None`, and records the skip, when `BRISK_SKIP_SERVICES` is set
/// (see [`skip_services`]), so a test starts with:
///
/// ```
/// let Some(db) = brisk_testkit::postgres() else { return };
/// assert!(db.url().starts_with("postgres"));
/// ```
///
/// The shared server is started on first use in this process (in well under
/// a second on an idle machine), on a free port on 127.0.0.1 in a fresh temporary directory, and
/// torn down by a watchdog once the process exits. If the environment
/// variable `DATABASE_URL` holds a `postgres://` or `postgresql://` URL, that
/// server is used instead and no server is started; its user needs the
/// `CREATEDB` privilege. Every call creates a new database (`brisk_t_<pid>_<n>_<random>`),
/// dropped again when the returned handle is dropped.
///
/// # Panics
///
/// If no server can be started or reached, or the database cannot be
/// created: a test that needs PostgreSQL fails loudly rather than passing
/// without it. The message says why (for a missing binary: which package to
/// install; for a failed start: the end of the server log).
#[must_use]
#[track_caller]
pub fn postgres() -> Option<TestDatabase> {
    static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();

    if skip_services() {
        skip(SKIP_REASON);
        return None;
    }
    let shared = match SHARED.get_or_init(|| Shared::start().map_err(|err| err.report())) {
        Ok(shared) => shared,
        Err(report) => panic!("brisk-testkit: no PostgreSQL server for tests: {report}"),
    };
    match shared.cluster.create_database() {
        Ok(db) => Some(db),
        Err(err) => panic!("brisk-testkit: {}", err.report()),
    }
}

/// A private PostgreSQL server for one test, which the test may stop and
/// restart.
///
/// Returns `None`, and records the skip, when `BRISK_SKIP_SERVICES` is set.
/// Otherwise the same as [`PostgresServer::start`], except that a failure
/// panics:
///
/// ```
/// let Some(mut server) = brisk_testkit::postgres_server() else { return Ok(()) };
/// server.restart()?;
/// # Ok::<(), brisk_testkit::TestkitError>(())
/// ```
///
/// # Panics
///
/// If the server cannot be started; the message says why.
#[must_use]
#[track_caller]
pub fn postgres_server() -> Option<PostgresServer> {
    if skip_services() {
        skip(SKIP_REASON);
        return None;
    }
    match PostgresServer::start() {
        Ok(server) => Some(server),
        Err(err) => panic!("brisk-testkit: {}", err.report()),
    }
}

/// A PostgreSQL server owned by one test: on a free port on 127.0.0.1, with
/// its own data directory, trust authentication for user `postgres`.
///
/// [`stop`](Self::stop), [`start_again`](Self::start_again) and
/// [`restart`](Self::restart) let a test see what its code does while the
/// database is away; data committed before a stop is there after the next
/// start. Dropping the server stops it and deletes its directory (a watchdog
/// does the same if the test process dies first).
///
/// This does not check `BRISK_SKIP_SERVICES`; tests usually go through
/// [`postgres_server()`] which does.
#[derive(Debug)]
pub struct PostgresServer {
    bin_dir: PathBuf,
    dir: PathBuf,
    port: u16,
    run_as: RunAs,
    #[cfg(feature = "tls")]
    tls: Option<crate::TestCertificates>,
    /// Dropped last (fields drop in order): stops the server, removes `dir`.
    _watchdog: Watchdog,
}

impl PostgresServer {
    /// Starts a server with the default settings; see
    /// [`PostgresServer::builder`] for the options.
    ///
    /// # Errors
    ///
    /// [`TestkitError::BinaryNotFound`] if PostgreSQL is not installed (the
    /// message names the `postgresql` package), or another variant if the
    /// server cannot be set up or does not answer `SELECT 1` within 20 s
    /// ([`TestkitError::StartFailed`] carries the end of its log).
    pub fn start() -> Result<Self, TestkitError> {
        Self::builder().start()
    }

    /// A builder to choose the binaries or add server settings before
    /// starting.
    #[must_use]
    pub fn builder() -> PostgresServerBuilder {
        PostgresServerBuilder::default()
    }

    /// The URL of the `postgres` database as user `postgres`:
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The certificates of a server started with
    /// [`PostgresServerBuilder::tls`]: trust [`ca_der`](crate::TestCertificates::ca_der)
    /// to verify it. `None` for a server without TLS.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(&self) -> Option<&crate::TestCertificates> {
        self.tls.as_ref()
    }

    /// The TCP port on 127.0.0.1; the same across restarts.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is running (asks `pg_ctl status`).
    #[must_use]
    pub fn is_running(&self) -> bool {
        let mut command = self.pg_ctl();
        command.arg("status").arg("-D").arg(self.data_dir());
        run(&mut command, &self.ctl_log()).is_ok()
    }

    /// Stops the server with a fast (clean) shutdown and waits for it to
    /// exit: open connections are closed, committed data is kept. Does
    /// nothing if it is already stopped.
    ///
    /// # Errors
    ///
    /// [`TestkitError::CommandFailed`] if `pg_ctl stop` fails.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        if !self.is_running() {
            return Ok(());
        }
        let mut command = self.pg_ctl();
        command
            .arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-t", "30"]);
        run(&mut command, &self.ctl_log()).map(drop)
    }

    /// Starts a stopped server again, on the same port with the same data,
    /// and waits until it answers `SELECT 1`. Does nothing if it is running.
    /// (Not `start`: that name is the constructor, [`PostgresServer::start`].)
    ///
    /// # Errors
    ///
    /// [`TestkitError::StartFailed`], with the end of the server log, if it
    /// does not start or answer within 20 s (for example because another
    /// process took the port while it was stopped).
    pub fn start_again(&mut self) -> Result<(), TestkitError> {
        if self.is_running() {
            return Ok(());
        }
        let log = self.dir.join("pg.log");
        let offset = file_len(&log);
        let mut command = self.pg_ctl();
        command
            .arg("start")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "20", "-o"])
            .arg(format!("-p {}", self.port));
        if let Err(err) = run(&mut command, &self.ctl_log()) {
            return Err(self.start_failed(offset, err.to_string()));
        }
        pg_client::wait_ready(&self.url(), READY_TIMEOUT)
            .map_err(|err| self.start_failed(offset, format!("no answer to `SELECT 1`: {err}")))
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

    /// Creates a fresh, empty database on this server; dropping the handle
    /// drops the database (best-effort).
    ///
    /// # Errors
    ///
    /// [`TestkitError::Query`] if `CREATE DATABASE` fails, e.g. because the
    /// server is stopped.
    pub fn create_database(&self) -> Result<TestDatabase, TestkitError> {
        Cluster::of(self).create_database()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn ctl_log(&self) -> PathBuf {
        self.dir.join("pg_ctl.log")
    }

    fn pg_ctl(&self) -> Command {
        let mut command = self.run_as.command(&self.bin_dir.join("pg_ctl"));
        command.current_dir(&self.dir);
        command
    }

    fn start_failed(&self, log_offset: u64, reason: String) -> TestkitError {
        let log = self.dir.join("pg.log");
        TestkitError::StartFailed {
            server: SERVER,
            port: self.port,
            reason,
            log_tail: tail_since(&log, log_offset, 30),
            log,
        }
    }

    /// Writes the server's certificate and key into the data directory,
    /// readable only by the server's user (PostgreSQL refuses a key others
    /// can read).
    #[cfg(feature = "tls")]
    fn write_tls_files(&self) -> Result<(), TestkitError> {
        use std::os::unix::fs::PermissionsExt as _;
        let Some(certs) = &self.tls else {
            return Ok(());
        };
        for (file, contents) in [
            ("server.crt", certs.server_cert_pem()),
            ("server.key", certs.server_key_pem()),
        ] {
            let path = self.data_dir().join(file);
            std::fs::write(&path, contents)
                .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)))
                .map_err(|err| TestkitError::io(format!("writing {}", path.display()), err))?;
            self.run_as.chown(&path)?;
        }
        Ok(())
    }

    fn initdb(&self, settings: &[(String, String)]) -> Result<(), TestkitError> {
        let mut command = self.run_as.command(&self.bin_dir.join("initdb"));
        command
            .current_dir(&self.dir)
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]);
        run(&mut command, &self.dir.join("initdb.log"))?;

        let mut conf = String::from("\n# brisk-testkit\n");
        let socket_dir = self.dir.to_string_lossy();
        let defaults = DEFAULT_SETTINGS.iter().copied();
        let socket = std::iter::once(("unix_socket_directories", &*socket_dir));
        let custom = settings
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()));
        for (name, value) in defaults.chain(socket).chain(custom) {
            let _ = writeln!(conf, "{name} = '{}'", value.replace('\'', "''"));
        }
        let path = self.data_dir().join("postgresql.conf");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(conf.as_bytes()))
            .map_err(|err| TestkitError::io(format!("appending settings to {}", path.display()), err))
    }
}

/// Options for a [`PostgresServer`], from [`PostgresServer::builder`].
#[derive(Debug, Clone, Default)]
pub struct PostgresServerBuilder {
    bin_dir: Option<PathBuf>,
    settings: Vec<(String, String)>,
    #[cfg(feature = "tls")]
    tls: bool,
}

impl PostgresServerBuilder {
    /// The directory holding `initdb`, `pg_ctl` and `postgres`.
    ///
    /// Default: the environment variable `BRISK_PG_BIN` if set, else the
    /// highest-versioned `/usr/lib/postgresql/*/bin` that has `initdb`, else
    /// the directory of `initdb` on `PATH`.
    #[must_use]
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// Sets a server setting (a `postgresql.conf` parameter), kept across
    /// restarts. Can be called repeatedly; a later value wins.
    ///
    /// Default settings: `listen_addresses = '127.0.0.1'`, `fsync = off`,
    /// `synchronous_commit = off`, `full_page_writes = off`,
    /// `wal_level = minimal`, `max_wal_senders = 0`,
    /// `max_connections = 200`, and the server's own directory for the Unix
    /// socket. The port is chosen at start and cannot be set here.
    #[must_use]
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Serves TLS (feature `tls`): `ssl = on`, with a server certificate for
    /// `localhost` and `127.0.0.1` signed by a fresh throwaway CA
    /// ([`TestCertificates`](crate::TestCertificates), from
    /// [`PostgresServer::tls`]). Plain connections are still accepted, so a
    /// test chooses with `sslmode`. Default: no TLS.
    ///
    /// ```
    /// # if brisk_testkit::skip_services() { return Ok(()); }
    /// let server = brisk_testkit::PostgresServer::builder().tls().start()?;
    /// let certs = server.tls().expect("started with TLS");
    /// assert!(certs.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    /// # Ok::<(), brisk_testkit::TestkitError>(())
    /// ```
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Creates the cluster and starts the server on a free port, retrying
    /// with another port if the chosen one was taken in the meantime. Returns
    /// once the server answers `SELECT 1`.
    ///
    /// # Errors
    ///
    /// As for [`PostgresServer::start`].
    pub fn start(self) -> Result<PostgresServer, TestkitError> {
        let bin_dir = match self.bin_dir {
            Some(dir) => check_bin_dir(dir)?,
            None => find_bin_dir()?,
        };
        let run_as = RunAs::detect()?;
        let dir = create_server_dir("pg", run_as.is_other_user())?;
        let watchdog = Watchdog::guard_dir(&dir, &cleanup_script(&run_as, &bin_dir, &dir))?;
        #[cfg(feature = "tls")]
        let tls = if self.tls {
            Some(crate::TestCertificates::generate()?)
        } else {
            None
        };
        #[cfg(feature = "tls")]
        let settings = if tls.is_some() {
            // Relative paths are relative to the data directory; the
            // caller's settings come after, so they win.
            let mut settings: Vec<(String, String)> = [
                ("ssl", "on"),
                ("ssl_cert_file", "server.crt"),
                ("ssl_key_file", "server.key"),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
            settings.extend(self.settings);
            settings
        } else {
            self.settings
        };
        #[cfg(not(feature = "tls"))]
        let settings = self.settings;
        let mut server = PostgresServer {
            bin_dir,
            dir,
            port: 0,
            run_as,
            #[cfg(feature = "tls")]
            tls,
            _watchdog: watchdog,
        };
        server.run_as.chown(&server.dir)?;
        server.initdb(&settings)?;
        #[cfg(feature = "tls")]
        server.write_tls_files()?;
        start_on_free_port(|port| {
            server.port = port;
            server.start_again()
        })?;
        Ok(server)
    }
}

/// The watchdog's teardown: an immediate stop, then remove the directory.
fn cleanup_script(run_as: &RunAs, bin_dir: &Path, dir: &Path) -> String {
    format!(
        "{} {} stop -D {} -m immediate -w -t 10 >/dev/null 2>&1\nrm -rf {}",
        run_as.shell_prefix(),
        shell_quote(bin_dir.join("pg_ctl").as_os_str()),
        shell_quote(dir.join("data").as_os_str()),
        shell_quote(dir.as_os_str()),
    )
}

/// `BRISK_PG_BIN`, else the highest `/usr/lib/postgresql/<version>/bin` with
/// `initdb`, else the directory of `initdb` on `PATH`.
fn find_bin_dir() -> Result<PathBuf, TestkitError> {
    if let Some(dir) = std::env::var_os("BRISK_PG_BIN").filter(|dir| !dir.is_empty()) {
        return check_bin_dir(PathBuf::from(dir));
    }
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            is_executable(&bin.join("initdb")).then_some((version, bin))
        })
        .max();
    if let Some((_, bin)) = installed {
        return check_bin_dir(bin);
    }
    if let Some(initdb) = find_on_path("initdb")
        && let Some(bin) = initdb.parent()
    {
        return check_bin_dir(bin.to_owned());
    }
    Err(TestkitError::BinaryNotFound {
        binary: "initdb".to_owned(),
        searched: "in BRISK_PG_BIN, /usr/lib/postgresql/*/bin or on PATH".to_owned(),
        package: PACKAGE,
    })
}

/// `dir` if it has the programs a server needs.
fn check_bin_dir(dir: PathBuf) -> Result<PathBuf, TestkitError> {
    for binary in ["initdb", "pg_ctl", "postgres"] {
        if !is_executable(&dir.join(binary)) {
            return Err(TestkitError::BinaryNotFound {
                binary: binary.to_owned(),
                searched: format!("in {}", dir.display()),
                package: PACKAGE,
            });
        }
    }
    Ok(dir)
}

/// Which user the PostgreSQL programs run as.
#[derive(Debug, Clone)]
enum RunAs {
    /// The current (non-root) user.
    Me,
    /// The `postgres` user, through `runuser`, because we are root.
    Postgres { runuser: PathBuf, uid: u32, gid: u32 },
}

impl RunAs {
    fn detect() -> Result<Self, TestkitError> {
        if !is_root() {
            return Ok(Self::Me);
        }
        let runuser = find_on_path("runuser")
            .or_else(|| {
                ["/usr/sbin/runuser", "/sbin/runuser"]
                    .into_iter()
                    .map(PathBuf::from)
                    .find(|path| is_executable(path))
            })
            .ok_or_else(|| TestkitError::BinaryNotFound {
                binary: "runuser".to_owned(),
                searched: "on PATH (needed to run PostgreSQL as `postgres` when root)".to_owned(),
                package: "util-linux",
            })?;
        Ok(Self::Postgres {
            runuser,
            uid: postgres_id("-u")?,
            gid: postgres_id("-g")?,
        })
    }

    fn is_other_user(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    fn command(&self, program: &Path) -> Command {
        match self {
            Self::Me => Command::new(program),
            Self::Postgres { runuser, .. } => {
                let mut command = Command::new(runuser);
                command.args(["-u", "postgres", "--"]).arg(program);
                command
            }
        }
    }

    /// What to put before a program in a shell script to run it as this user.
    fn shell_prefix(&self) -> String {
        match self {
            Self::Me => String::new(),
            Self::Postgres { runuser, .. } => {
                format!("{} -u postgres --", shell_quote(runuser.as_os_str()))
            }
        }
    }

    fn chown(&self, dir: &Path) -> Result<(), TestkitError> {
        match self {
            Self::Me => Ok(()),
            Self::Postgres { uid, gid, .. } => std::os::unix::fs::chown(dir, Some(*uid), Some(*gid))
                .map_err(|err| TestkitError::io(format!("chown postgres {}", dir.display()), err)),
        }
    }
}

/// `id <flag> postgres`: the `postgres` user's uid or gid.
fn postgres_id(flag: &str) -> Result<u32, TestkitError> {
    let shown = format!("id {flag} postgres");
    let output = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .map_err(|err| TestkitError::io(format!("running `{shown}`"), err))?;
    let text = String::from_utf8_lossy(&output.stdout);
    match text.trim().parse() {
        Ok(id) if output.status.success() => Ok(id),
        _ => Err(TestkitError::CommandFailed {
            command: shown,
            status: output.status.to_string(),
            output: format!(
                "{}\nas root, PostgreSQL runs as the `postgres` user, which the \
                 `postgresql` package creates: install it with `apt-get install -y postgresql`",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        }),
    }
}

/// Where test databases are created: the shared server, a private one, or
/// the server of `DATABASE_URL`.
#[derive(Debug)]
struct Cluster {
    /// A URL to connect to for `CREATE DATABASE`; test database URLs are this
    /// URL with the database name replaced.
    admin_url: String,
    host: String,
    port: u16,
    user: String,
}

/// The process-wide cluster behind [`postgres()`].
#[derive(Debug)]
struct Shared {
    cluster: Cluster,
    /// The server we started, if `DATABASE_URL` did not name one; kept for
    /// the life of the process and torn down by its watchdog.
    _server: Option<PostgresServer>,
}

impl Shared {
    /// `DATABASE_URL` if it is a PostgreSQL URL, else a server started for
    /// this process.
    fn start() -> Result<Self, TestkitError> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if is_postgres_url(&url) => Ok(Self {
                cluster: Cluster::external(&url)?,
                _server: None,
            }),
            _ => {
                let server = PostgresServer::start()?;
                Ok(Self {
                    cluster: Cluster::of(&server),
                    _server: Some(server),
                })
            }
        }
    }
}

impl Cluster {
    fn of(server: &PostgresServer) -> Self {
        Self {
            admin_url: server.url(),
            host: "127.0.0.1".to_owned(),
            port: server.port,
            user: "postgres".to_owned(),
        }
    }

    /// The server of `DATABASE_URL`, checked by asking it who we are.
    fn external(url: &str) -> Result<Self, TestkitError> {
        let config: tokio_postgres::Config =
            url.parse()
                .map_err(|err: tokio_postgres::Error| TestkitError::InvalidUrl {
                    var: "DATABASE_URL",
                    value: mask_password(url),
                    reason: err.to_string(),
                })?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let rows = pg_client::simple_query(url, "SELECT current_user", QUERY_TIMEOUT).map_err(|source| {
            TestkitError::Query {
                server: SERVER,
                url: mask_password(url),
                action: "connecting to DATABASE_URL".to_owned(),
                source,
            }
        })?;
        let user = rows.into_iter().flatten().next().unwrap_or_default();
        Ok(Self {
            admin_url: url.to_owned(),
            host,
            port,
            user,
        })
    }

    fn create_database(&self) -> Result<TestDatabase, TestkitError> {
        let (pid, counter, random) = unique_parts();
        let dbname = format!("brisk_t_{pid}_{counter}_{random:08x}");
        let sql = format!("CREATE DATABASE \"{dbname}\"");
        pg_client::simple_query(&self.admin_url, &sql, QUERY_TIMEOUT).map_err(|source| {
            TestkitError::Query {
                server: SERVER,
                url: mask_password(&self.admin_url),
                action: sql.clone(),
                source,
            }
        })?;
        Ok(TestDatabase {
            url: with_database(&self.admin_url, &dbname),
            host: self.host.clone(),
            port: self.port,
            dbname,
            user: self.user.clone(),
            admin_url: self.admin_url.clone(),
        })
    }
}

/// A fresh, empty PostgreSQL database for one test, from [`postgres()`] or
/// [`PostgresServer::create_database`].
///
/// Connect with [`url`](Self::url) (or the parts: [`host`](Self::host),
/// [`port`](Self::port), [`dbname`](Self::dbname), [`user`](Self::user)).
/// Dropping it drops the database, best-effort, with `DROP DATABASE ... WITH
/// (FORCE)`, which also ends connections the test left open.
pub struct TestDatabase {
    url: String,
    host: String,
    port: u16,
    dbname: String,
    user: String,
    admin_url: String,
}

impl TestDatabase {
    /// The connection URL, e.g.
    /// `postgres://postgres@127.0.0.1:41234/brisk_t_4242_0_9f3a61c2`. With
    /// `DATABASE_URL` set, that URL with its database name replaced (user,
    /// password, host, port and query parameters kept).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's host (`127.0.0.1` for servers started here).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The server's port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database name, `brisk_t_<pid>_<counter>_<random>`.
    #[must_use]
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The user to connect as (`postgres` for servers started here).
    #[must_use]
    pub fn user(&self) -> &str {
        &self.user
    }
}

impl std::fmt::Debug for TestDatabase {
    // By hand, to mask a password from `DATABASE_URL` in test output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("url", &mask_password(&self.url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best-effort: the server may already be stopped or gone, and a
        // database left behind on a throwaway server goes with its directory.
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.dbname);
        let _ = pg_client::simple_query(&self.admin_url, &sql, DROP_TIMEOUT);
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` with its path (the database name) replaced by `/dbname`; scheme,
/// user, password, host, port, query and fragment are kept.
fn with_database(url: &str, dbname: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_end = authority_start + rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let after = &url[authority_end..];
    let path_end = authority_end + after.find(['?', '#']).unwrap_or(after.len());
    format!("{}/{dbname}{}", &url[..authority_end], &url[path_end..])
}

#[cfg(test)]
mod tests {
    use super::{is_postgres_url, with_database};

    #[test]
    fn with_database_replaces_only_the_path() {
        for (url, expected) in [
            ("postgres://u:p@h:5432/app", "postgres://u:p@h:5432/t1"),
            (
                "postgres://u:p@h:5432/app?sslmode=disable",
                "postgres://u:p@h:5432/t1?sslmode=disable",
            ),
            ("postgresql://h", "postgresql://h/t1"),
            (
                "postgresql://h?application_name=x",
                "postgresql://h/t1?application_name=x",
            ),
            ("postgres://u@h/", "postgres://u@h/t1"),
            ("postgres://u@h1:1,h2:2/db#f", "postgres://u@h1:1,h2:2/t1#f"),
        ] {
            assert_eq!(with_database(url, "t1"), expected, "{url}");
        }
    }

    #[test]
    fn only_postgres_urls_count() {
        assert!(is_postgres_url("postgres://h/db"));
        assert!(is_postgres_url("postgresql://h/db"));
        assert!(!is_postgres_url("sqlite://data/brisk.db"));
        assert!(!is_postgres_url(""));
    }
}
