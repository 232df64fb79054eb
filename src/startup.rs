//! Application: binds the listener itself (so tests can ask for port 0), builds the shared
//! state and runs until its shutdown token is cancelled, then drains: it stops accepting,
//! sessions close with 1001 at once and queue their LEAVEs, requests in progress finish (all
//! within the drain budget), the connections left are dropped, the writer stores what is
//! queued, and the database closes.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use actix_http::HttpService;
use actix_server::{Server, ServerHandle};
use actix_service::{IntoServiceFactory, ServiceFactoryExt, map_config};
use actix_web::dev::AppConfig;
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use governor::{Quota, RateLimiter};
use tokio::net::TcpSocket;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing_actix_web::TracingLogger;

use crate::clients::{ClientAddress, ConnectionCap};
use crate::cluster::{self, Cluster, ClusterError};
use crate::config::Settings;
use crate::domain::InstanceId;
use crate::error;
use crate::http::request_span::RequestSpan;
use crate::http::{self, middleware};
use crate::hub::{Fanout, Hub};
use crate::identity::{IdentityConfigError, Verifier};
use crate::liveness;
use crate::memory;
use crate::metrics::Metrics;
use crate::openapi;
use crate::state::{AppState, HttpLimiter};
use crate::store::{self, StoreError};
use crate::writer::{self, BatchLimits, Writer};
use crate::ws;

/// How often idle entries are swept from the per-client rate limiters.
const LIMITER_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How long a connection may take to close after its response is done.
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections that may wait to be accepted (the kernel caps it at net.core.somaxconn): when
/// thousands of clients reconnect at once after a restart, std's 128 overflows, and each
/// connection whose SYN was dropped waits a second (then three) for its retransmission.
const ACCEPT_BACKLOG: u32 = 4096;
/// How long the writer gets, once the server has stopped, to store what is queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr} (set CHAT_ADDR, CHAT_PORT or --addr): {source}")]
    Bind { addr: String, source: io::Error },
    #[error("cannot open storage {url} (set DATABASE_URL): {source}")]
    Store { url: String, source: StoreError },
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Identity(#[from] IdentityConfigError),
    #[error(
        "REDIS_URL is set, but DATABASE_URL is a SQLite file, which one process owns: \
         several instances need a shared postgres:// DATABASE_URL"
    )]
    RedisNeedsSharedStorage,
    #[error("{0}")]
    Redis(#[from] ClusterError),
    #[error("cannot register this instance in storage (DATABASE_URL): {0}")]
    Register(#[from] liveness::RegisterError),
    #[error("cannot render the OpenAPI document: {0}")]
    OpenApi(#[from] serde_json::Error),
    #[error("cannot start the HTTP server: {0}")]
    Server(#[from] io::Error),
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    writer: JoinHandle<()>,
    /// With several instances: ends once what was stored last is published.
    publisher: Option<JoinHandle<()>>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let (identity, redis, shared) = checked(&settings)?;
        let addr = settings.listen_addr();
        let listener = bind(&addr).map_err(|source| StartupError::Bind { addr, source })?;
        let local = listener.local_addr()?;
        let instance = InstanceId::random();
        let storage = connect_storage(&settings, instance).await?;
        let metrics = Arc::new(Metrics::new());
        let hub = Arc::new(Hub::new(metrics.clone()));
        let shutdown = CancellationToken::new();
        let parts = cluster::Parts {
            instance,
            hub: hub.clone(),
            store: storage.store.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        };
        let (cluster, publisher) = redis.map(|client| Cluster::start(client, parts)).unzip();
        let fanout: Arc<dyn Fanout> = match &cluster {
            Some(cluster) => cluster.clone(),
            None => hub.clone(),
        };
        let options = writer_options(&settings);
        let (writer, writer_task) =
            Writer::start(storage.writer, fanout.clone(), metrics.clone(), options);
        liveness::register(&*storage.liveness, &writer, shared).await?;
        let state = web::Data::new(AppState {
            openapi: openapi::render()?,
            instance,
            cluster,
            fanout,
            evictions: Arc::new(watch::channel(0).0),
            shutdown,
            tasks: TaskTracker::new(),
            replays: replay_turns(&settings),
            identity,
            clients: ClientAddress::new(
                settings.trusted_proxies.clone(),
                settings.forwarded_header,
            ),
            http_limiter: http_limiter(&settings),
            connection_cap: settings.connection_cap().map(ConnectionCap::new),
            ws_limiter: crate::clients::frames::identity_limiter(&settings),
            next_session: AtomicU64::new(1),
            store: storage.store,
            liveness: storage.liveness,
            settings,
            hub,
            writer,
            metrics,
        });
        let server = serve(listener, state.clone())?;
        tracing::info!(addr = %local, %instance, "listening");
        Ok(Self {
            port: local.port(),
            server,
            state,
            writer: writer_task,
            publisher,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cancel this to stop the application gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    pub async fn run_until_stopped(self) -> io::Result<()> {
        let Self {
            server,
            state,
            writer,
            publisher,
            ..
        } = self;
        let handle = server.handle();
        let mut running = tokio::spawn(server);
        let shutdown = state.shutdown.clone();
        spawn_background(&state);
        let early = tokio::select! {
            served = &mut running => Some(served),
            () = shutdown.cancelled() => None,
        };
        shutdown.cancel();
        let served = match early {
            Some(served) => served,
            None => {
                drain(&state, handle).await;
                running.await
            }
        };
        wind_down(state, writer, publisher).await;
        served.map_err(io::Error::other)?
    }
}

/// What runs beside the server until shutdown: the limiters' sweep, giving memory back after
/// bursts, and this instance's heartbeat.
fn spawn_background(state: &web::Data<AppState>) {
    let shutdown = state.shutdown.clone();
    tokio::spawn(sweep_limiters(state.clone(), shutdown.clone()));
    let metrics = state.metrics.clone();
    tokio::spawn(memory::release_after_bursts(metrics, shutdown.clone()));
    let heartbeat = liveness::Parts {
        liveness: state.liveness.clone(),
        writer: state.writer.clone(),
        timing: liveness::Timing::of(&state.settings),
        evictions: state.evictions.clone(),
        metrics: state.metrics.clone(),
    };
    tokio::spawn(liveness::run(heartbeat, shutdown));
}

/// After the last session: every step bounded, since storage or Redis may be unreachable.
async fn wind_down(
    state: web::Data<AppState>,
    writer: JoinHandle<()>,
    publisher: Option<JoinHandle<()>>,
) {
    // Stores a LEAVE for any membership left (one whose LEAVE could not be stored) and
    // tells the other instances this one is gone, after every LEAVE queued so far.
    // Bounded: storage may be unreachable (the writer then refuses it at once, but a
    // reap under way waits on a network that went silent).
    let reaped = tokio::time::timeout(FLUSH_TIMEOUT, state.writer.reap(state.instance, None));
    if !matches!(reaped.await, Ok(Ok(_))) {
        tracing::warn!("could not deregister this instance; the others will reap it");
    }
    let store = state.store.clone();
    drop(state);
    if tokio::time::timeout(FLUSH_TIMEOUT, writer).await.is_err() {
        tracing::warn!("the storage writer did not finish in time");
    }
    if let Some(publisher) = publisher
        && tokio::time::timeout(FLUSH_TIMEOUT, publisher)
            .await
            .is_err()
    {
        tracing::warn!("publishing the last events to Redis did not finish in time");
    }
    if tokio::time::timeout(FLUSH_TIMEOUT, store.close())
        .await
        .is_err()
    {
        tracing::warn!("closing the storage connections did not finish in time");
    }
    tracing::info!("stopped");
}

/// Settings that cannot work refuse to start: the identity verifier they name, the Redis
/// client, and whether storage is shared (several instances need it to be).
fn checked(
    settings: &Settings,
) -> Result<(Option<Verifier>, Option<redis::Client>, bool), StartupError> {
    settings.validate()?;
    let identity = Verifier::from_settings(&settings.identity)?;
    let shared = store::is_shared(settings.database_url.expose());
    if settings.redis_url.is_some() && !shared {
        return Err(StartupError::RedisNeedsSharedStorage);
    }
    let redis = settings
        .redis_url
        .as_ref()
        .map(|url| cluster::redis_client(url.expose(), settings.redis_ca_file.as_deref()))
        .transpose()?;
    Ok((identity, redis, shared))
}

async fn connect_storage(
    settings: &Settings,
    instance: InstanceId,
) -> Result<store::Storage, StartupError> {
    let url = settings.database_url.expose();
    store::connect(url, settings.db_max_connections, instance)
        .await
        .map_err(|source| StartupError::Store {
            url: crate::config::redact(url),
            source,
        })
}

/// Turns at the read pool for replays: half its connections.
fn replay_turns(settings: &Settings) -> Arc<Semaphore> {
    let turns = (settings.db_max_connections as usize / 2).max(1);
    Arc::new(Semaphore::new(turns))
}

/// The per-client REST limiter the settings call for; None when rate limits are off.
fn http_limiter(settings: &Settings) -> Option<Arc<HttpLimiter>> {
    let per_minute = settings.http_quota()?;
    Some(Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))))
}

/// The writer's queue, and batches of half a session queue.
fn writer_options(settings: &Settings) -> writer::Options {
    writer::Options {
        queue: settings.write_queue,
        batch: BatchLimits::for_session_queue(settings.session_queue, settings.session_queue_bytes),
        purge_delay: settings.purge_delay(),
    }
}

/// Stops accepting, lets sessions and requests finish within the drain budget (sessions close
/// at once: shutdown cancelled their loops), then drops every connection left, such as idle
/// keep-alives, which would otherwise hold the process for their own timeouts.
async fn drain(state: &AppState, handle: ServerHandle) {
    tracing::info!("draining: closing sessions, finishing requests");
    handle.pause().await;
    state.tasks.close();
    let budget = state.settings.shutdown_timeout();
    if tokio::time::timeout(budget, state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = state.tasks.len(),
            "sessions and requests outlasted the drain budget"
        );
    }
    handle.stop(false).await;
}

/// Listens on the first of the addresses `addr` names that can be bound.
fn bind(addr: &str) -> io::Result<TcpListener> {
    let mut refused = None;
    for addr in addr.to_socket_addrs()? {
        match bind_one(addr) {
            Ok(listener) => return Ok(listener),
            Err(error) => refused = Some(error),
        }
    }
    Err(refused.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
}

/// As std's `TcpListener::bind` (SO_REUSEADDR on), with a backlog of [`ACCEPT_BACKLOG`]
/// instead of its 128.
fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)?.into_std()
}

/// Serves HTTP on the listener: the API, the page and the docs through actix-web, and
/// WebSocket upgrades through [`ws::upgrade`], which takes their connections over.
fn serve(listener: TcpListener, state: web::Data<AppState>) -> io::Result<Server> {
    let settings = &state.settings;
    let json = web::JsonConfig::default()
        .limit(settings.max_body_bytes)
        .error_handler(error::json_error);
    let query = web::QueryConfig::default().error_handler(error::query_error);
    let path = web::PathConfig::default().error_handler(error::path_error);
    let addr = listener.local_addr()?;
    let mut server = actix_server::Server::build().disable_signals();
    if let Some(workers) = settings.workers {
        server = server.workers(workers);
    }
    let server = server.listen("chat", listener, move || {
        let app = App::new()
            .app_data(state.clone())
            .app_data(json.clone())
            .app_data(query.clone())
            .app_data(path.clone())
            .wrap(from_fn(middleware::count_errors))
            .wrap(from_fn(middleware::track))
            .wrap(TracingLogger::<RequestSpan>::new())
            .configure(http::routes)
            .default_service(web::to(http::not_found))
            .into_factory()
            .map_err(|error| error.error_response());
        HttpService::build()
            // Sessions batch what they write themselves; Nagle would only hold it back.
            .tcp_nodelay(true)
            .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
            .local_addr(addr)
            .upgrade(ws::upgrade::service(state.clone().into_inner()))
            .finish(map_config(app, |_| AppConfig::default()))
            .tcp()
    })?;
    Ok(server.run())
}

/// Forgets clients whose quotas have fully refilled, so the limiters' memory stays bounded.
async fn sweep_limiters(state: web::Data<AppState>, shutdown: CancellationToken) {
    let (http, ws) = (state.http_limiter.clone(), state.ws_limiter.clone());
    drop(state);
    if http.is_none() && ws.is_none() {
        return;
    }
    let mut ticks = tokio::time::interval(LIMITER_SWEEP_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {
                if let Some(http) = &http {
                    http.retain_recent();
                    http.shrink_to_fit();
                }
                if let Some(ws) = &ws {
                    ws.retain_recent();
                    ws.shrink_to_fit();
                }
            }
        }
    }
}
