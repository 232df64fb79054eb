//! Settings: every knob has a default in code and can be set by flag or environment variable
//! (`chat --help` lists them). Secrets in URLs are redacted from `Debug`. A leaf: nothing of
//! the crate is needed to read the settings.

mod identity;
mod proxies;
mod secret;
mod validate;
mod webhooks;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use identity::IdentitySettings;
pub use proxies::{ForwardedHeader, TrustedProxies};
pub use secret::{Secret, SecretUrl, redact};
pub use validate::ConfigError;
pub use webhooks::WebhookSettings;

#[derive(Debug, Parser)]
#[command(
    name = "chat",
    version,
    about = "A multi-room chat service over REST and WebSocket"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Command {
    /// Print the OpenAPI document (the content of openapi/openapi.json) and exit.
    Openapi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What an event has survived by the time it is acknowledged (its sender's copy, a REST
/// answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Durability {
    /// On disk: each batch's commit is flushed (fsync) first, so it survives a power loss.
    Fsync,
    /// Handed to the operating system (SQLite `synchronous = NORMAL` in WAL, PostgreSQL
    /// `synchronous_commit = off`): it survives this process being killed, not the machine
    /// (or, on PostgreSQL, the database server) going down within the moment before it is
    /// flushed.
    Os,
}

impl Durability {
    /// As `CHAT_DURABILITY` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fsync => "fsync",
            Self::Os => "os",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Listen address, host:port [env: CHAT_ADDR]
    #[arg(long, env = "CHAT_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Port to listen on, overriding the port of --addr (0 picks a free one)
    #[arg(long, env = "CHAT_PORT")]
    pub port: Option<u16>,
    /// Storage: sqlite://PATH (created if missing)
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://chat.db")]
    pub database_url: SecretUrl,
    /// Most open database connections
    #[arg(long, env = "CHAT_DB_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..), default_value_t = 8)]
    pub db_max_connections: u32,
    /// What an event survives once acknowledged: fsync (on disk, survives a power loss) or os
    /// (handed to the operating system: survives the process being killed)
    #[arg(long, env = "CHAT_DURABILITY", value_enum, default_value_t = Durability::Fsync)]
    pub durability: Durability,
    /// Redis for several instances sharing rooms (with a postgres:// DATABASE_URL): redis://,
    /// rediss://, redis+sentinel://host:port,.../<master name>, or redis+cluster://host:port,...
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<SecretUrl>,
    /// PEM certificate authority to trust for a rediss://, rediss+sentinel:// or rediss+cluster://
    /// REDIS_URL (default: the system's roots)
    #[arg(long, env = "CHAT_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
    /// Milliseconds between this instance's heartbeats in storage
    #[arg(long, env = "CHAT_HEARTBEAT_MS", value_parser = clap::value_parser!(u64).range(1..), default_value_t = 5_000)]
    pub heartbeat_ms: u64,
    /// Milliseconds of silence after which an instance counts as dead and its members leave
    #[arg(long, env = "CHAT_INSTANCE_TIMEOUT_MS", default_value_t = 20_000)]
    pub instance_timeout_ms: u64,
    /// HTTP worker threads, which run the sessions (default: one per CPU)
    #[arg(long, env = "CHAT_WORKERS", value_parser = at_least_one())]
    pub workers: Option<usize>,
    /// Threads of the runtime that runs the writer, fan-out, the broker and webhooks
    /// (default: one per two CPUs)
    #[arg(long, env = "CHAT_RUNTIME_THREADS", value_parser = at_least_one())]
    pub runtime_threads: Option<usize>,
    /// Largest WebSocket frame accepted, in bytes; larger ones close with 1009
    #[arg(long, env = "CHAT_MAX_FRAME_BYTES", value_parser = at_least_one(), default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,
    /// Largest JSON request body accepted, in bytes; larger ones get 413
    #[arg(long, env = "CHAT_MAX_BODY_BYTES", value_parser = at_least_one(), default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,
    // A slot is small (an event's bytes are shared by all members) and eight full batches
    // fit, so a reader that is only briefly busy is never cut off.
    /// Events queued per session before it is closed with 1013 as too slow
    #[arg(long, env = "CHAT_SESSION_QUEUE", value_parser = at_least_one(), default_value_t = 4096)]
    pub session_queue: usize,
    // At least 64 KiB, so any one event (4,000 characters, escaped) fits.
    /// Bytes of events queued per session before it is closed with 1013 as too slow
    #[arg(long, env = "CHAT_SESSION_QUEUE_BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(65536..), default_value_t = 4 * 1024 * 1024)]
    pub session_queue_bytes: usize,
    /// Appends queued for the storage writer; while it is full, sessions read no frames
    #[arg(long, env = "CHAT_WRITE_QUEUE", value_parser = at_least_one(), default_value_t = 8192)]
    pub write_queue: usize,
    /// Microseconds the writer waits after the first append of a batch for more to join it
    /// (0: none): fewer, larger commits, for CPU at the price of latency
    #[arg(long, env = "CHAT_COMMIT_WAIT_US", value_parser = clap::value_parser!(u64).range(0..=100_000), default_value_t = 0)]
    pub commit_wait_us: u64,
    /// Milliseconds between server pings
    #[arg(long, env = "CHAT_PING_INTERVAL_MS", value_parser = clap::value_parser!(u64).range(1..), default_value_t = 15_000)]
    pub ping_interval_ms: u64,
    /// Milliseconds of client silence (no frame, no pong) before the connection is dropped
    #[arg(long, env = "CHAT_CLIENT_TIMEOUT_MS", default_value_t = 45_000)]
    pub client_timeout_ms: u64,
    /// Rate limits on or off (off is for benchmarks)
    #[arg(long, env = "CHAT_RATE_LIMIT", value_enum, default_value_t = Toggle::On)]
    pub rate_limit: Toggle,
    /// WebSocket frames per second per session, sustained
    #[arg(long, env = "CHAT_WS_RATE_PER_SEC", default_value_t = NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN))]
    pub ws_rate_per_sec: NonZeroU32,
    /// WebSocket frames a session may send at once before the sustained rate applies
    #[arg(long, env = "CHAT_WS_BURST", default_value_t = NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN))]
    pub ws_burst: NonZeroU32,
    /// REST requests per minute per client address (also the burst)
    #[arg(long, env = "CHAT_HTTP_RATE_PER_MIN", default_value_t = NonZeroU32::new(1200).unwrap_or(NonZeroU32::MIN))]
    pub http_rate_per_min: NonZeroU32,
    /// WebSocket connections one client address may hold at once
    #[arg(long, env = "CHAT_MAX_CONNECTIONS_PER_ADDR", value_parser = at_least_one(), default_value_t = 1000)]
    pub max_connections_per_addr: usize,
    /// Reverse proxies whose forwarding header names the client: IPs or CIDR ranges, comma-separated (default: none)
    #[arg(
        long,
        env = "CHAT_TRUSTED_PROXIES",
        default_value = "",
        hide_default_value = true
    )]
    pub trusted_proxies: TrustedProxies,
    /// The header the trusted proxies set
    #[arg(long, env = "CHAT_FORWARDED_HEADER", value_enum, default_value_t = ForwardedHeader::XForwardedFor)]
    pub forwarded_header: ForwardedHeader,
    /// Seconds a deleted room's events stay before they are purged, so members still replaying
    /// them get every one before CLOSED
    #[arg(long, env = "CHAT_PURGE_DELAY_SECS", default_value_t = 600)]
    pub purge_delay_secs: u64,
    /// Seconds a room keeps its events when its own retention says nothing (unset: all)
    #[arg(long, env = "CHAT_RETENTION_MAX_AGE")]
    pub retention_max_age: Option<u64>,
    /// Milliseconds between looks for events past their room's retention (erased in bounded
    /// steps, each its own transaction)
    #[arg(long, env = "CHAT_RETENTION_CHECK_MS", default_value_t = 10_000)]
    pub retention_check_ms: u64,
    /// Seconds sessions and requests may take to finish on shutdown (the drain budget)
    #[arg(long, env = "CHAT_SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,
    /// Log format; the filter comes from RUST_LOG (default: info)
    #[arg(long, env = "CHAT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub identity: IdentitySettings,
    #[command(flatten)]
    pub webhooks: WebhookSettings,
}

/// The CPUs this process may use, which the thread counts' defaults follow.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Parses a count that must be at least 1 (a zero queue or worker count cannot work).
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

impl Settings {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    pub fn instance_timeout(&self) -> Duration {
        Duration::from_millis(self.instance_timeout_ms)
    }

    /// The longest the members of an instance that died may stay in their rooms: one timeout
    /// of silence, then at most one heartbeat until another instance notices.
    pub fn leave_bound(&self) -> Duration {
        self.instance_timeout() + self.heartbeat()
    }

    /// Defaults plus whatever the environment sets, with no command-line flags.
    pub fn from_env() -> Result<Self, clap::Error> {
        Cli::try_parse_from(["chat"]).map(|cli| cli.settings)
    }

    /// The address to bind, with --port applied.
    pub fn listen_addr(&self) -> String {
        match (self.port, self.addr.rsplit_once(':')) {
            (Some(port), Some((host, _))) => format!("{host}:{port}"),
            (Some(port), None) => format!("{}:{port}", self.addr),
            (None, _) => self.addr.clone(),
        }
    }

    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }

    pub fn client_timeout(&self) -> Duration {
        Duration::from_millis(self.client_timeout_ms)
    }

    pub fn purge_delay(&self) -> Duration {
        Duration::from_secs(self.purge_delay_secs)
    }

    /// One per CPU unless set. One per two CPUs, as the runtime's threads, cut the CPU per
    /// delivery at 2,000 TALK/s on two CPUs by a seventh, but a storm of 19,000 connections
    /// then left 8.0-9.5 KiB of RSS per idle connection against 6.5-6.8 with two workers.
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(cpus)
    }

    /// One per two CPUs unless set: sessions run on the HTTP workers, and the runtime's tasks
    /// (the writer above all) wake one another and SQLite's thread several times per commit;
    /// each thread more is one more to wake across cores. On two CPUs at 2,000 TALK/s, one
    /// runtime thread instead of two cut the CPU per delivery by a sixth, with no less
    /// throughput in the unbounded fan-out and broadcast.
    pub fn runtime_threads(&self) -> usize {
        self.runtime_threads.unwrap_or_else(|| (cpus() / 2).max(1))
    }

    pub fn commit_wait(&self) -> Duration {
        Duration::from_micros(self.commit_wait_us)
    }

    pub fn retention_check(&self) -> Duration {
        Duration::from_millis(self.retention_check_ms.max(1))
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// Per-session frame rate and burst, or None when rate limits are off.
    pub fn ws_quota(&self) -> Option<(NonZeroU32, NonZeroU32)> {
        (self.rate_limit == Toggle::On).then_some((self.ws_rate_per_sec, self.ws_burst))
    }

    /// Per-address REST requests per minute, or None when rate limits are off.
    pub fn http_quota(&self) -> Option<NonZeroU32> {
        (self.rate_limit == Toggle::On).then_some(self.http_rate_per_min)
    }

    /// WebSocket connections per client address, or None when rate limits are off.
    pub fn connection_cap(&self) -> Option<usize> {
        (self.rate_limit == Toggle::On).then_some(self.max_connections_per_addr)
    }
}

#[cfg(test)]
mod tests;
