//! Process plumbing shared by both servers: finding binaries, server
//! directories, free ports, running helper commands, and the watchdog that
//! tears a server down when the test process is gone.
//!
//! # Why a watchdog, and why a pipe
//!
//! Rust never runs `Drop` for statics, and a test process may also panic,
//! abort or be killed. So every server directory gets a watchdog: a small
//! `sh` in its own process group whose stdin is a pipe from the test process.
//! Nothing is ever written to that pipe; the watchdog blocks reading it, and
//! when the last write end closes (the owner dropped it, or the kernel closed
//! it because the test process exited however it exited) it reads EOF and
//! runs the cleanup script: stop the server, `rm -rf` the directory. Compared
//! with polling `kill -0 <pid>` this reacts at once, never confuses a reused
//! pid, and gives owned servers the very same teardown path on `Drop` (close
//! the pipe, wait for the watchdog), so that path is exercised by every test
//! that drops a private server. The write end is `O_CLOEXEC` (as every
//! descriptor Rust opens), so servers and helpers spawned later do not keep
//! it open. Its own process group keeps a terminal's Ctrl-C, or a test
//! runner killing the test's process group, from taking the watchdog down
//! with the test.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::TestkitError;

/// How long a server gets to answer a real query or `PING` after start.
pub(crate) const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// How many fresh ports to try when a start fails because the port was
/// taken between picking it and the server binding it.
pub(crate) const PORT_ATTEMPTS: usize = 5;

/// The first executable file called `name` in `PATH`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a regular file with an execute bit set.
pub(crate) fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Calls `start` with free ports until it succeeds, or fails for a reason
/// other than the port having been taken in the meantime (a server log
/// saying "already in use"), at most [`PORT_ATTEMPTS`] times.
pub(crate) fn start_on_free_port(
    mut start: impl FnMut(u16) -> Result<(), TestkitError>,
) -> Result<(), TestkitError> {
    let mut attempt = 1;
    loop {
        match start(free_port()?) {
            Err(err) if attempt < PORT_ATTEMPTS && is_port_clash(&err) => attempt += 1,
            result => return result,
        }
    }
}

/// Whether a start failed because the port was already taken.
fn is_port_clash(err: &TestkitError) -> bool {
    matches!(err, TestkitError::StartFailed { log_tail, .. } if log_tail.contains("already in use"))
}

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0 and let
/// go). Another process may take it before the server binds it; callers
/// retry with a new port when the server reports the address in use.
pub(crate) fn free_port() -> Result<u16, TestkitError> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| TestkitError::io("binding 127.0.0.1:0 to pick a free port", err))
}

/// `(pid, counter, random)`: the parts of a name no other test, thread or
/// process on this machine uses at the same time.
pub(crate) fn unique_parts() -> (u32, u64, u32) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    (
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..),
    )
}

/// Creates a fresh, empty directory for one server: under
/// `BRISK_TESTKIT_TMPDIR` if set, else in RAM under `/dev/shm` when that has
/// room, else under the system temp directory. When `other_user` is set
/// (root running PostgreSQL as `postgres`) the temp directory is one that
/// user can reach.
pub(crate) fn create_server_dir(kind: &str, other_user: bool) -> Result<PathBuf, TestkitError> {
    let bases = base_dirs(other_user);
    let mut last_error = None;
    for base in &bases {
        loop {
            let (pid, counter, random) = unique_parts();
            let dir = base.join(format!("brisk-testkit-{kind}-{pid}-{counter}-{random:08x}"));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(dir),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(err) => {
                    last_error = Some(TestkitError::io(
                        format!("creating server directory {}", dir.display()),
                        err,
                    ));
                    break;
                }
            }
        }
    }
    Err(last_error.unwrap_or_else(|| {
        TestkitError::io("choosing a server directory", std::io::ErrorKind::NotFound.into())
    }))
}

/// Where server directories go, best first.
///
/// `/dev/shm` (a tmpfs) first because PostgreSQL's file work is far cheaper
/// in RAM: on this project's machines `CREATE DATABASE` takes about 30 ms
/// there against 300+ ms on ext4 even with `fsync` off, and `initdb` about
/// a third of the time. But a container's `/dev/shm` can be tiny (Docker's
/// default is 64 MiB), so it is used only with at least 1 GiB free.
fn base_dirs(other_user: bool) -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os("BRISK_TESTKIT_TMPDIR").filter(|dir| !dir.is_empty()) {
        return vec![PathBuf::from(dir)];
    }
    let mut bases = Vec::with_capacity(2);
    if shm_has_room() {
        bases.push(PathBuf::from("/dev/shm"));
    }
    let temp = std::env::temp_dir();
    let reachable = |dir: &Path| {
        dir.ancestors().all(|ancestor| {
            std::fs::metadata(ancestor).is_ok_and(|meta| meta.permissions().mode() & 0o001 != 0)
        })
    };
    // e.g. `TMPDIR=/root/tmp`, which the `postgres` user cannot enter.
    bases.push(if other_user && !reachable(&temp) {
        PathBuf::from("/tmp")
    } else {
        temp
    });
    bases
}

/// Whether `/dev/shm` exists with at least 1 GiB available (asks `df`, as
/// `statvfs` would need `unsafe`); checked once per process.
fn shm_has_room() -> bool {
    static ROOM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOM.get_or_init(|| {
        Path::new("/dev/shm").is_dir()
            && Command::new("df")
                .args(["-Pk", "/dev/shm"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .is_ok_and(|out| {
                    let text = String::from_utf8_lossy(&out.stdout);
                    let available_kib = text
                        .lines()
                        .nth(1)
                        .and_then(|line| line.split_whitespace().nth(3))
                        .and_then(|field| field.parse::<u64>().ok());
                    out.status.success() && available_kib.is_some_and(|kib| kib >= 1024 * 1024)
                })
    })
}

/// Runs `command` to completion with stdin from `/dev/null` and stdout and
/// stderr appended to `capture` (a file, not a pipe, so a daemon that
/// inherits them cannot keep us waiting for EOF). Returns what it printed.
#[cfg(feature = "postgres")]
pub(crate) fn run(command: &mut Command, capture: &Path) -> Result<String, TestkitError> {
    let shown = show_command(command);
    let offset = file_len(capture);
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(capture)
    };
    let (stdout, stderr) = open()
        .and_then(|out| Ok((out, open()?)))
        .map_err(|err| TestkitError::io(format!("opening {}", capture.display()), err))?;
    let status = command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .status()
        .map_err(|err| TestkitError::io(format!("running `{shown}`"), err))?;
    let output = tail_since(capture, offset, 40);
    if status.success() {
        Ok(output)
    } else {
        Err(TestkitError::CommandFailed {
            command: shown,
            status: status.to_string(),
            output,
        })
    }
}

/// The command line of `command`, for messages.
#[cfg(feature = "postgres")]
pub(crate) fn show_command(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The current length of `path` (0 if it does not exist): remembered before
/// a start so that only that start's log lines are shown and searched.
pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |meta| meta.len())
}

/// The last `lines` lines of `path` from byte `offset` on, trimmed.
pub(crate) fn tail_since(path: &Path, offset: u64, lines: usize) -> String {
    let mut text = Vec::new();
    let read = File::open(path).and_then(|mut file| {
        file.seek(SeekFrom::Start(offset))?;
        file.read_to_end(&mut text)
    });
    if let Err(err) = read {
        return format!("(could not read {}: {err})", path.display());
    }
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `arg` quoted for `sh`.
pub(crate) fn shell_quote(arg: &OsStr) -> String {
    format!("'{}'", arg.to_string_lossy().replace('\'', r"'\''"))
}

/// The effective user id, from `id -u` (no `unsafe` libc call), cached.
#[cfg(feature = "postgres")]
pub(crate) fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0")
    })
}

/// Runs a cleanup script once the test process is gone, or earlier when
/// dropped (see the module docs). Dropping it runs the script now and waits
/// for it to finish.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
    /// The write end of the watchdog's stdin; closing it starts the cleanup.
    alive: Option<ChildStdin>,
}

impl Watchdog {
    /// Spawns a watchdog that will run the `sh` snippet `cleanup`.
    pub(crate) fn spawn(cleanup: &str) -> Result<Self, TestkitError> {
        // Ignore hang-ups and interrupts: the watchdog must outlive the
        // terminal or runner that stops the tests, to clean up after them.
        let script = format!("trap '' HUP INT\ncat >/dev/null\n{cleanup}\n");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|err| TestkitError::io("spawning the cleanup watchdog (`sh`)", err))?;
        let alive = child.stdin.take();
        Ok(Self { child, alive })
    }

    /// Spawns the watchdog of a server directory just created, removing the
    /// directory at once if the watchdog cannot be started.
    pub(crate) fn guard_dir(dir: &Path, cleanup: &str) -> Result<Self, TestkitError> {
        Self::spawn(cleanup).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(dir);
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.alive.take());
        let _ = self.child.wait();
    }
}
