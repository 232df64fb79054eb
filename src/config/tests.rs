//! The settings as the command line and the environment give them: defaults, ranges, and what
//! is refused by name.

use super::*;

fn settings() -> Settings {
    Cli::try_parse_from(["chat", "--database-url", "postgres://u:pw@h/db"])
        .unwrap()
        .settings
}

/// Why the settings are refused, as said at start-up.
fn refusal(s: &Settings) -> String {
    s.validate().unwrap_err().to_string()
}

#[test]
fn debug_output_redacts_the_database_password_and_the_jwt_secret() {
    let mut s = settings();
    s.identity.jwt_secret = Some("a-secret-of-at-least-32-bytes-long".parse().unwrap());
    let shown = format!("{s:?}");
    assert!(!shown.contains("pw"), "{shown}");
    assert!(!shown.contains("a-secret"), "{shown}");
}

#[test]
fn durability_is_fsync_unless_os_is_asked_for_and_nothing_else_is_taken() {
    assert_eq!(settings().durability, Durability::Fsync);
    let cli = Cli::try_parse_from(["chat", "--durability", "os"]).unwrap();
    assert_eq!(cli.settings.durability, Durability::Os);
    assert_eq!(cli.settings.durability.name(), "os");
    let error = Cli::try_parse_from(["chat", "--durability", "sometimes"])
        .unwrap_err()
        .to_string();
    assert!(error.contains("fsync") && error.contains("os"), "{error}");
}

#[test]
fn a_commit_waits_for_nothing_unless_asked_and_never_past_100_ms() {
    assert_eq!(settings().commit_wait(), Duration::ZERO);
    let cli = Cli::try_parse_from(["chat", "--commit-wait-us", "100000"]).unwrap();
    assert_eq!(cli.settings.commit_wait(), Duration::from_millis(100));
    for refused in ["100001", "-1", "1.5", "soon"] {
        let flag = format!("--commit-wait-us={refused}");
        let error = Cli::try_parse_from(["chat", flag.as_str()]).unwrap_err();
        assert!(error.to_string().contains("--commit-wait-us"), "{error}");
    }
}

#[test]
fn a_port_overrides_the_port_of_the_address() {
    let mut s = settings();
    s.addr = "0.0.0.0:8080".into();
    s.port = Some(9000);
    assert_eq!(s.listen_addr(), "0.0.0.0:9000");
}

#[test]
fn http_workers_are_one_per_cpu_and_runtime_threads_one_per_two_unless_set() {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(settings().workers(), cpus);
    assert_eq!(settings().runtime_threads(), (cpus / 2).max(1));
    let cli = Cli::try_parse_from(["chat", "--workers", "3", "--runtime-threads", "5"]).unwrap();
    assert_eq!(cli.settings.workers(), 3);
    assert_eq!(cli.settings.runtime_threads(), 5);
}

#[test]
fn zero_queues_and_workers_are_refused_by_name() {
    for flag in [
        "--session-queue",
        "--write-queue",
        "--workers",
        "--runtime-threads",
        "--max-frame-bytes",
    ] {
        let error = Cli::try_parse_from(["chat", flag, "0"])
            .unwrap_err()
            .to_string();
        assert!(error.contains(flag), "{error}");
    }
}

#[test]
fn a_client_timeout_not_above_the_ping_interval_is_refused() {
    let mut s = settings();
    s.ping_interval_ms = 1000;
    s.client_timeout_ms = 1000;
    assert!(
        refusal(&s).contains("CHAT_CLIENT_TIMEOUT_MS"),
        "{}",
        refusal(&s)
    );
    s.client_timeout_ms = 3000;
    assert!(s.validate().is_ok());
}

#[test]
fn an_instance_timeout_below_two_heartbeats_is_refused() {
    let mut s = settings();
    s.heartbeat_ms = 1000;
    s.instance_timeout_ms = 1999;
    assert!(
        refusal(&s).contains("CHAT_INSTANCE_TIMEOUT_MS"),
        "{}",
        refusal(&s)
    );
    s.instance_timeout_ms = 2000;
    assert!(s.validate().is_ok());
    assert_eq!(settings().leave_bound(), Duration::from_secs(25));
}

#[test]
fn the_members_of_a_dead_instance_must_leave_within_a_minute() {
    let mut s = settings();
    s.heartbeat_ms = 5_000;
    s.instance_timeout_ms = 55_001;
    let error = refusal(&s);
    assert!(error.contains("60000"), "{error}");
    s.instance_timeout_ms = 55_000;
    assert!(s.validate().is_ok());
}

#[test]
fn rate_limit_off_disables_every_limit() {
    let mut s = settings();
    s.rate_limit = Toggle::Off;
    assert!(s.ws_quota().is_none() && s.http_quota().is_none());
    assert!(s.connection_cap().is_none());
}

#[test]
fn the_session_queue_holds_4_mib_by_default_and_at_least_64_kib() {
    assert_eq!(settings().session_queue_bytes, 4 * 1024 * 1024);
    let error = Cli::try_parse_from(["chat", "--session-queue-bytes", "65535"])
        .unwrap_err()
        .to_string();
    assert!(error.contains("--session-queue-bytes"), "{error}");
}

#[test]
fn trusted_proxies_are_a_comma_separated_list_and_none_by_default() {
    assert!(settings().trusted_proxies.is_empty());
    let cli = Cli::try_parse_from(["chat", "--trusted-proxies", "10.0.0.0/8,::1"]).unwrap();
    assert_eq!(
        cli.settings.trusted_proxies,
        "10.0.0.0/8, ::1".parse().unwrap()
    );
    let empty = Cli::try_parse_from(["chat", "--trusted-proxies", ""]).unwrap();
    assert!(empty.settings.trusted_proxies.is_empty());
    let error = Cli::try_parse_from(["chat", "--trusted-proxies", "proxy.local"])
        .unwrap_err()
        .to_string();
    assert!(error.contains("--trusted-proxies"), "{error}");
}
