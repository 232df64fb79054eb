//! Application: binds the listener itself (so tests can ask for port 0), builds the shared
//! state and runs until its shutdown token is cancelled, then drains: it stops accepting,
//! sessions close with 1001 at once and queue their LEAVEs, requests in progress finish (all
//! within the drain budget), the connections left are dropped, the writer stores what is
//! queued, and the database closes.

mod background;
mod bounds;
mod drain;
mod server;

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use actix_server::Server;
use actix_web::web;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::bounds::{http_limiter, replay_turns, writer_options};
use crate::clients::{ClientAddress, ConnectionCap};
use crate::cluster::{self, Cluster, ClusterError};
use crate::config::Settings;
use crate::domain::InstanceId;
use crate::hub::{Fanout, Hub};
use crate::identity::{IdentityConfigError, Verifier};
use crate::liveness;
use crate::metrics::Metrics;
use crate::openapi;
use crate::state::AppState;
use crate::store::{self, StoreError};
use crate::webhooks::{Sealer, Sender};
use crate::writer::Writer;

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
    #[error("{0}")]
    WebhookKey(#[from] crate::webhooks::SecretError),
    #[error("cannot start the webhook client: {0}")]
    WebhookClient(#[from] reqwest::Error),
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
    /// Posts webhook deliveries.
    sender: Arc<Sender>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let (identity, redis, shared) = checked(&settings)?;
        let sealer = Sealer::from_settings(&settings)?.map(Arc::new);
        let webhooks = &settings.webhooks;
        let sender = Sender::new(webhooks.timeout(), webhooks.webhook_allow_private)?;
        let sender = Arc::new(sender);
        let addr = settings.listen_addr();
        let listener = server::bind(&addr).map_err(|source| StartupError::Bind { addr, source })?;
        let local = listener.local_addr()?;
        let instance = InstanceId::random();
        let storage = connect_storage(&settings, instance).await?;
        let pipeline = Pipeline::start(instance, &storage, redis);
        let (writer, writer_task) = Writer::start(
            storage.writer,
            pipeline.shared.fanout.clone(),
            pipeline.shared.metrics.clone(),
            writer_options(&settings),
        );
        liveness::register(&*storage.liveness, &writer, shared).await?;
        let parts = Parts {
            instance,
            identity,
            store: storage.store,
            liveness: storage.liveness,
            webhooks: storage.webhooks,
            sealer,
            writer,
        };
        let state = web::Data::new(app_state(settings, parts, pipeline.shared)?);
        let server = server::serve(listener, state.clone())?;
        tracing::info!(addr = %local, %instance, "listening");
        Ok(Self {
            port: local.port(),
            server,
            state,
            writer: writer_task,
            publisher: pipeline.publisher,
            sender,
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
            sender,
            ..
        } = self;
        let handle = server.handle();
        let mut running = tokio::spawn(server);
        let shutdown = state.shutdown.clone();
        background::spawn(&state, sender);
        let early = tokio::select! {
            served = &mut running => Some(served),
            () = shutdown.cancelled() => None,
        };
        shutdown.cancel();
        let served = match early {
            Some(served) => served,
            None => {
                drain::drain(&state, handle).await;
                running.await
            }
        };
        drain::wind_down(state, writer, publisher).await;
        served.map_err(io::Error::other)?
    }
}

/// The hub, and with Redis the cluster in front of it: where the writer's events go.
struct Pipeline {
    shared: Shared,
    /// With several instances: ends once what was stored last is published.
    publisher: Option<JoinHandle<()>>,
}

/// What the pipeline hands to the application state.
struct Shared {
    metrics: Arc<Metrics>,
    hub: Arc<Hub>,
    cluster: Option<Arc<Cluster>>,
    fanout: Arc<dyn Fanout>,
    shutdown: CancellationToken,
}

impl Pipeline {
    fn start(
        instance: InstanceId,
        storage: &store::Storage,
        redis: Option<cluster::Broker>,
    ) -> Self {
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
        let shared = Shared {
            metrics,
            hub,
            cluster,
            fanout,
            shutdown,
        };
        Self { shared, publisher }
    }
}

/// What storage and identity hand to the application state.
struct Parts {
    instance: InstanceId,
    identity: Option<Verifier>,
    store: Arc<dyn store::Store>,
    liveness: Arc<dyn store::Liveness>,
    webhooks: store::Webhooks,
    sealer: Option<Arc<Sealer>>,
    writer: Writer,
}

fn app_state(settings: Settings, parts: Parts, shared: Shared) -> Result<AppState, StartupError> {
    Ok(AppState {
        openapi: openapi::render()?,
        instance: parts.instance,
        cluster: shared.cluster,
        fanout: shared.fanout,
        evictions: Arc::new(watch::channel(0).0),
        shutdown: shared.shutdown,
        tasks: TaskTracker::new(),
        replays: replay_turns(&settings),
        identity: parts.identity,
        clients: ClientAddress::new(settings.trusted_proxies.clone(), settings.forwarded_header),
        http_limiter: http_limiter(&settings),
        connection_cap: settings.connection_cap().map(ConnectionCap::new),
        ws_limiter: crate::clients::frames::identity_limiter(&settings),
        next_session: AtomicU64::new(1),
        store: parts.store,
        liveness: parts.liveness,
        webhooks: parts.webhooks,
        sealer: parts.sealer,
        settings,
        hub: shared.hub,
        writer: parts.writer,
        metrics: shared.metrics,
    })
}

/// Settings that cannot work refuse to start: the identity verifier they name, the Redis
/// client, and whether storage is shared (several instances need it to be).
fn checked(
    settings: &Settings,
) -> Result<(Option<Verifier>, Option<cluster::Broker>, bool), StartupError> {
    settings.validate()?;
    let identity = Verifier::from_settings(&settings.identity)?;
    let shared = store::is_shared(settings.database_url.expose());
    if settings.redis_url.is_some() && !shared {
        return Err(StartupError::RedisNeedsSharedStorage);
    }
    let redis = settings
        .redis_url
        .as_ref()
        .map(|url| cluster::broker(url.expose(), settings.redis_ca_file.as_deref()))
        .transpose()?;
    Ok((identity, redis, shared))
}

async fn connect_storage(
    settings: &Settings,
    instance: InstanceId,
) -> Result<store::Storage, StartupError> {
    let url = settings.database_url.expose();
    let durability = settings.durability;
    let storage = store::connect(url, settings.db_max_connections, instance, durability)
        .await
        .map_err(|source| StartupError::Store {
            url: crate::config::redact(url),
            source,
        })?;
    tracing::info!(durability = durability.name(), "storage ready");
    Ok(storage)
}
