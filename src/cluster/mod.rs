//! Several instances serving the same rooms: storage (PostgreSQL) is shared, and Redis carries
//! what each instance stores to the others' members.
//!
//! Each instance publishes what its writer stored on the room's channel (`chat:room:<roomId>`,
//! [`wire`]), and subscribes, on one connection, to the channels of the rooms it has members
//! in, and only those ([`subscriber`]). Plain channels, not sharded ones: one Redis carries
//! them all, and sharded channels only pay off across the shards of a Redis Cluster.
//!
//! Redis pub/sub may drop a message (a reconnect, a full buffer), and with several publishers
//! deliver a room's events out of `seq` order (instance A stores 10, B stores 11, B's publish
//! arrives first). Storage is the authority, the broker only a fast path: each instance puts
//! each room's events back in order ([`sequencer`]), holds one that arrives early, and reads
//! from storage what does not arrive within a short wait, what was published while it was not
//! subscribed (after subscribing and after every reconnect), and, every [`SYNC_EVERY`], up to
//! each room's newest seq, so nothing a lost message carried stays missing. The subscription
//! checks itself with beats it publishes to itself ([`beats`]): one that stops bringing them
//! is not ready and is opened anew.
//!
//! The broker is one Redis, or the master a set of Sentinels names ([`broker`]), asked again
//! at every connect, so a failover is followed without a restart.
//!
//! Publishing never holds up the writer ([`publisher`]): a bounded queue takes each message,
//! and one that is dropped or fails to publish is recovered by the others' gap fills.

mod beats;
mod broker;
mod holdback;
mod moves;
mod publisher;
mod sequencer;
mod sharded;
mod subscriber;
mod urls;
pub mod wire;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::domain::{Event, InstanceId, Notice, RoomId, Seq, SessionId};
use crate::hub::{Fanout, Hub};
use crate::metrics::Metrics;
use crate::store::Store;
pub use broker::Broker;
use publisher::{BOUNDS, Publisher};
use sequencer::Sequencer;
use subscriber::Subscriber;
use urls::{Nodes, SentinelUrl};
use wire::{Body, Envelope};

/// How often every active room is checked against storage, whatever arrived meanwhile.
pub const SYNC_EVERY: Duration = Duration::from_secs(2);

/// `REDIS_URL` or what goes with it cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "REDIS_URL is not a Redis URL (redis://, rediss:// for TLS, or \
         redis+sentinel://host:port,host:port/<master name>, or redis+cluster://host:port,...): {0}"
    )]
    Url(redis::RedisError),
    #[error("REDIS_URL: {0}")]
    BadUrl(&'static str),
    #[error("CHAT_REDIS_CA_FILE cannot be read: {0}")]
    CaFile(std::io::Error),
    #[error(
        "CHAT_REDIS_CA_FILE is set, but REDIS_URL does not use TLS \
         (rediss://, rediss+sentinel://, rediss+cluster://)"
    )]
    CaWithoutTls,
}

/// This instance's part of the cluster: fan-out through the broker and back in order.
pub struct Cluster {
    instance: InstanceId,
    broker: Broker,
    hub: Arc<Hub>,
    sequencer: Arc<Sequencer>,
    publisher: Publisher,
    publishing: Arc<AtomicBool>,
    subscribed: Arc<AtomicBool>,
}

/// What the cluster needs of this instance.
pub struct Parts {
    pub instance: InstanceId,
    pub hub: Arc<Hub>,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
}

/// The broker `REDIS_URL` names: one Redis (with its credentials, and TLS for `rediss://`),
/// the master of a set of Sentinels, or a cluster's nodes; over TLS each is verified against
/// the system's roots or, given, the authority in `ca_file`. Nothing is connected yet.
pub fn broker(redis_url: &str, ca_file: Option<&Path>) -> Result<Broker, ClusterError> {
    let roots = ca_file
        .map(|path| std::fs::read(path).map_err(ClusterError::CaFile))
        .transpose()?;
    if let Some(nodes) = Nodes::parse(redis_url) {
        let mut nodes = nodes.map_err(ClusterError::BadUrl)?;
        nodes.access.roots = trusted(roots, nodes.access.tls)?;
        return Ok(Broker::Cluster(Arc::new(nodes)));
    }
    if let Some(sentinels) = SentinelUrl::parse(redis_url) {
        let mut sentinels = sentinels.map_err(ClusterError::BadUrl)?;
        sentinels.access.roots = trusted(roots, sentinels.access.tls)?;
        let client = sentinels.client().map_err(ClusterError::Url)?;
        return Ok(Broker::Sentinel(Arc::new(tokio::sync::Mutex::new(client))));
    }
    let roots = trusted(roots, redis_url.starts_with("rediss:"))?;
    let client = match roots {
        None => redis::Client::open(redis_url),
        Some(roots) => redis::Client::build_with_tls(redis_url, certificates(roots)),
    };
    client
        .map(|client| Broker::Single(Box::new(client)))
        .map_err(ClusterError::Url)
}

/// The authority to verify the servers against, which only TLS can use.
fn trusted(roots: Option<Vec<u8>>, tls: bool) -> Result<Option<Vec<u8>>, ClusterError> {
    match roots {
        Some(_) if !tls => Err(ClusterError::CaWithoutTls),
        roots => Ok(roots),
    }
}

/// Certificates that trust `roots` (PEM), without a client certificate.
fn certificates(roots: Vec<u8>) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(roots),
    }
}

impl Cluster {
    /// Starts publishing, subscribing and syncing; Redis need not be reachable yet. The handle
    /// ends once the cluster is dropped and everything it was given is published.
    pub fn start(broker: Broker, parts: Parts) -> (Arc<Self>, JoinHandle<()>) {
        let Parts {
            instance,
            hub,
            store,
            metrics,
            shutdown,
        } = parts;
        let sequencer = Sequencer::new(hub.clone(), store, metrics.clone());
        let publishing = Arc::new(AtomicBool::new(false));
        let subscribed = Arc::new(AtomicBool::new(false));
        let (publisher, flushed) =
            Publisher::start(broker.clone(), metrics.clone(), publishing.clone(), BOUNDS);
        let subscriber = Subscriber {
            broker: broker.clone(),
            instance,
            hub: hub.clone(),
            sequencer: sequencer.clone(),
            metrics,
            up: subscribed.clone(),
        };
        tokio::spawn(subscriber.run(shutdown.clone()));
        tokio::spawn(sync_now_and_then(sequencer.clone(), hub.clone(), shutdown));
        let cluster = Arc::new(Self {
            instance,
            broker,
            hub,
            sequencer,
            publisher,
            publishing,
            subscribed,
        });
        (cluster, flushed)
    }

    /// Whether Redis answers both the publisher and the subscriber.
    pub fn ready(&self) -> bool {
        self.publishing.load(Ordering::Relaxed) && self.subscribed.load(Ordering::Relaxed)
    }

    fn publish_body(&self, room_id: RoomId, body: Body) {
        match serde_json::to_string(&Envelope::new(self.instance, body)) {
            Ok(payload) => self
                .publisher
                .publish(self.broker.channel(room_id), payload),
            Err(error) => tracing::error!(%error, "could not encode a message for the broker"),
        }
    }
}

/// Each room's events of a batch go out together: under load, a message carries many events
/// (every message costs a command, Redis's write to each subscriber, and a read and a wake-up
/// on every instance, its own too).
impl Fanout for Cluster {
    fn publish(&self, events: &[Event]) {
        for event in events {
            self.sequencer.arrive(event.clone());
        }
        for (room_id, body) in wire::batch(events) {
            self.publish_body(room_id, body);
        }
    }

    fn close_room(&self, room_id: RoomId, last_seq: Seq) {
        self.sequencer.close(room_id, last_seq);
        self.publish_body(room_id, Body::Closed { room_id, last_seq });
    }

    /// Straight to the members here and on the broker, never through the sequencer: a notice
    /// has no seq, and never holds up or reorders events. A typing notice this instance drops
    /// (within a second of that sender's last) goes nowhere.
    fn notify(&self, notice: &Notice, from: Option<SessionId>) {
        let sent = self.hub.notice(notice, from);
        if sent || matches!(notice, Notice::Read { .. }) {
            self.publish_body(notice.room_id(), Body::Notice(notice.clone()));
        }
    }
}

/// Every [`SYNC_EVERY`], checks every room with members here against storage.
async fn sync_now_and_then(sequencer: Arc<Sequencer>, hub: Arc<Hub>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(SYNC_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let rooms = hub.active_room_ids();
        if !rooms.is_empty() {
            sequencer.clone().sync(rooms).await;
        }
    }
}
