//! Servers go away with the test process, however it ends: statics are
//! never dropped, and an abort runs no destructor at all, so this is the
//! watchdogs' work.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::{assert_scenario_ok, scenario_command};

#[test]
fn servers_are_torn_down_when_the_process_exits() {
    check_teardown("exit");
}

#[test]
fn servers_are_torn_down_when_the_process_aborts() {
    check_teardown("abort");
}

fn check_teardown(how: &str) {
    if brisk_testkit::skip_services() {
        brisk_testkit::skip("starts servers in a child process");
        return;
    }
    let child = scenario_command(&["teardown", how], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let pid = child.id();
    let output = child.wait_with_output().expect("child output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!(
        "--- child teardown {how} ({}) stdout:\n{stdout}\n--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    if how == "exit" {
        assert_scenario_ok(&output, &["teardown", how]);
    } else {
        // SIGABRT: it really aborted, rather than failing some other way.
        assert_eq!(output.status.signal(), Some(6), "{}", output.status);
    }
    let ports: Vec<u16> = stdout
        .lines()
        .find_map(|line| line.strip_prefix("BRISK_IT_PORTS "))
        .unwrap_or_else(|| panic!("no ports in the child's output:\n{stdout}"))
        .split(' ')
        .map(|port| port.parse().expect("port"))
        .collect();
    assert_eq!(ports.len(), 4);

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listening: Vec<u16> = ports.iter().copied().filter(|&port| accepts(port)).collect();
        let dirs = server_dirs_of(pid);
        if listening.is_empty() && dirs.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after the child ({how}) ended, ports {listening:?} still accept and {dirs:?} still exist"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// The server directories a process with this pid created.
fn server_dirs_of(pid: u32) -> Vec<PathBuf> {
    let marker = format!("-{pid}-");
    let mut bases = vec![
        std::env::temp_dir(),
        PathBuf::from("/tmp"),
        PathBuf::from("/dev/shm"),
    ];
    bases.extend(std::env::var_os("BRISK_TESTKIT_TMPDIR").map(PathBuf::from));
    bases
        .iter()
        .filter_map(|base| std::fs::read_dir(base).ok())
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| {
                    name.starts_with("brisk-testkit-")
                        && !name.starts_with("brisk-testkit-it-")
                        && name.contains(&marker)
                })
        })
        .collect()
}
