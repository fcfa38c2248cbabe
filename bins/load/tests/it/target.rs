use brisk_load::{LoadError, Target};

#[test]
fn refuses_targets_outside_loopback() {
    for t in [
        "http://10.0.0.1:80",
        "http://192.168.1.10:8000",
        "http://8.8.8.8",
        "ws://[2001:db8::1]:9001/ws",
    ] {
        match Target::parse(t, false) {
            Err(LoadError::NonLoopback { target, addr }) => {
                assert_eq!(target, t);
                assert!(!addr.ip().is_loopback());
            }
            other => panic!("{t}: {other:?}"),
        }
    }
}

#[test]
fn accepts_all_of_127_0_0_0_8_and_ipv6_loopback() {
    for t in [
        "http://127.0.0.1:8000",
        "http://127.9.8.7:1",
        "http://[::1]:8000",
        "http://localhost:8000",
        "ws://127.0.0.1:9001/ws",
    ] {
        let target = Target::parse(t, false).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert!(target.addr().ip().is_loopback(), "{t}");
    }
}

#[test]
fn allow_remote_lifts_the_refusal_and_tls_is_refused() {
    assert!(Target::parse("http://10.0.0.1:80", true).is_ok());
    assert!(matches!(
        Target::parse("https://127.0.0.1", false),
        Err(LoadError::InvalidTarget { .. })
    ));
    assert!(matches!(
        Target::parse("127.0.0.1:80", false),
        Err(LoadError::InvalidTarget { .. })
    ));
}
