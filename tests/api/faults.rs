//! What the fault tests break: a Redis of the test's own that it may stop and start, and a TCP
//! proxy that can cut a service off as a failing network would.

use std::borrow::Cow;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// How far above its port a Redis Cluster node's bus listens.
const BUS_OFFSET: u16 = 10_000;

/// A free port for a Redis Cluster node whose bus port is free too (so at most 55535).
fn node_port() -> u16 {
    loop {
        let port = free_port();
        if port <= u16::MAX - BUS_OFFSET
            && TcpListener::bind(("127.0.0.1", port + BUS_OFFSET)).is_ok()
        {
            return port;
        }
    }
}

/// The PostgreSQL server the tests use (`CHAT_TEST_POSTGRES_URL`, by default the machine's).
pub fn postgres_server() -> (String, u16) {
    let admin = std::env::var("CHAT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    ("127.0.0.1".into(), postgres_port(&admin))
}

/// The same database URL (a test database's, without TLS: the proxy's traps read the
/// protocol's messages), reaching its server through `proxy`.
pub fn through(url: &str, proxy: &Proxy) -> String {
    let proxied = url.replacen(&postgres_port(url).to_string(), &proxy.port.to_string(), 1);
    assert!(
        proxied.contains("sslmode=disable"),
        "the proxy needs {url} without TLS"
    );
    proxied
}

/// The port of a PostgreSQL URL (5432 when it names none).
fn postgres_port(url: &str) -> u16 {
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next());
    let host = authority
        .and_then(|a| a.rsplit('@').next())
        .unwrap_or_default();
    host.rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(5432)
}

/// A Redis of the test's own, on a port of its own, keeping nothing on disk.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// With TLS (the test certificates) and a password, or neither.
    secured: Option<&'static str>,
    /// The port of the master it replicates, when it is a replica.
    replica_of: Option<u16>,
    /// Its working directory: a replica's full sync goes through a dump.rdb there, not in
    /// the tests' own.
    dir: tempfile::TempDir,
}

/// A TLS server's certificate and key, the authority it trusts, and that it does not ask
/// clients for theirs.
fn tls_files() -> Vec<String> {
    [
        ("--tls-cert-file", tls_fixture("server.pem")),
        ("--tls-key-file", tls_fixture("server-key.pem")),
        ("--tls-ca-cert-file", tls_fixture("ca.pem")),
        ("--tls-auth-clients", "no".to_owned()),
    ]
    .into_iter()
    .flat_map(|(name, value)| [name.to_owned(), value])
    .collect()
}

/// The test certificates (`tests/fixtures/tls`).
pub fn tls_fixture(name: &str) -> String {
    format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

impl RedisServer {
    pub fn start() -> Self {
        Self::started(None)
    }

    /// One that speaks only TLS, with the test certificates, and wants `password`.
    pub fn start_secured(password: &'static str) -> Self {
        Self::started(Some(password))
    }

    /// A replica of `master`, secured as it is (replicating over TLS then).
    pub fn start_replica_of(master: &RedisServer) -> Self {
        Self::started_as(master.secured, Some(master.port))
    }

    fn started(secured: Option<&'static str>) -> Self {
        Self::started_as(secured, None)
    }

    fn started_as(secured: Option<&'static str>, replica_of: Option<u16>) -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
            secured,
            replica_of,
            dir: tempfile::tempdir().expect("a directory for its files"),
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        match self.secured {
            Some(password) => format!("rediss://:{password}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    fn listen_args(&self) -> Vec<String> {
        let port = self.port.to_string();
        let mut args = match self.secured {
            None => vec!["--port".into(), port],
            Some(password) => [
                ("--port", "0".to_owned()),
                ("--tls-port", port),
                ("--tls-replication", "yes".to_owned()),
                ("--requirepass", password.to_owned()),
                ("--masterauth", password.to_owned()),
            ]
            .into_iter()
            .flat_map(|(name, value)| [name.to_owned(), value])
            .chain(tls_files())
            .collect(),
        };
        if let Some(master) = self.replica_of {
            args.extend(["--replicaof".into(), "127.0.0.1".into(), master.to_string()]);
        }
        args
    }

    /// Starts it (again) on its port and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(self.listen_args())
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is needed for these tests: run scripts/test, which installs it");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listens(self.port) {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Publishes a message on a channel, as any client of this Redis could.
    pub fn publish(&self, channel: &str, message: &str) {
        let status = Command::new("redis-cli")
            .args(["-u", &self.url().replace("rediss://", "redis://")])
            .args(
                self.secured
                    .map(|_| ["--tls", "--cacert"])
                    .into_iter()
                    .flatten(),
            )
            .args(self.secured.map(|_| tls_fixture("ca.pem")))
            .args(["PUBLISH", channel, message])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli runs (it comes with redis-server)");
        assert!(status.success(), "redis-cli PUBLISH failed");
    }

    /// Kills it: every connection to it drops, and what it held is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis master, its replica, and three Sentinels watching them as `chat` (quorum 2, a
/// master silent for a second counts as down), each Sentinel with a config file of its own.
pub struct SentinelSet {
    pub master: RedisServer,
    pub replica: RedisServer,
    pub ports: Vec<u16>,
    sentinels: Vec<Child>,
    _configs: tempfile::TempDir,
}

impl SentinelSet {
    pub fn start() -> Self {
        Self::watching(RedisServer::start())
    }

    /// Over a master and replica that speak only TLS and want `password` (the Sentinels
    /// themselves listen in plain).
    pub fn start_secured(password: &'static str) -> Self {
        Self::watching(RedisServer::start_secured(password))
    }

    fn watching(master: RedisServer) -> Self {
        let replica = RedisServer::start_replica_of(&master);
        let configs = tempfile::tempdir().expect("a directory for the Sentinels' configs");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let sentinels = ports
            .iter()
            .map(|port| {
                let config = configs.path().join(format!("sentinel-{port}.conf"));
                let mut text = format!(
                    "port {port}\nbind 127.0.0.1\nsentinel resolve-hostnames no\n\
                     sentinel monitor chat 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds chat 1000\n\
                     sentinel failover-timeout chat 5000\n",
                    master.port
                );
                if let Some(password) = master.secured {
                    text += &format!(
                        "sentinel auth-pass chat {password}\ntls-replication yes\n\
                         tls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n",
                        tls_fixture("server.pem"),
                        tls_fixture("server-key.pem"),
                        tls_fixture("ca.pem")
                    );
                }
                std::fs::write(&config, text).expect("a Sentinel config");
                let child = Command::new("redis-server")
                    .arg(&config)
                    .args(["--sentinel", "--loglevel", "warning"])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server runs Sentinels too");
                wait_for_port(*port);
                child
            })
            .collect();
        let set = Self {
            master,
            replica,
            ports,
            sentinels,
            _configs: configs,
        };
        set.wait_for_master(set.master.port);
        set
    }

    /// `REDIS_URL` for the service.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        match self.master.secured {
            Some(password) => format!("rediss+sentinel://:{password}@{}/chat", hosts.join(",")),
            None => format!("redis+sentinel://{}/chat", hosts.join(",")),
        }
    }

    /// The master's port, as the first Sentinel says.
    pub fn master_port(&self) -> Option<u16> {
        let output = Command::new("redis-cli")
            .args(["-p", &self.ports[0].to_string()])
            .args(["SENTINEL", "get-master-addr-by-name", "chat"])
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|port| port.trim().parse().ok())
    }

    /// Waits until every Sentinel knows the replica and the first names `port` as master.
    pub fn wait_for_master(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.master_port() != Some(port) || !self.replica_known() {
            assert!(
                Instant::now() < deadline,
                "the Sentinels never agreed on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn replica_known(&self) -> bool {
        let output = Command::new("redis-cli")
            .args(["-p", &self.ports[0].to_string()])
            .args(["SENTINEL", "replicas", "chat"])
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).contains(&self.replica.port.to_string())
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for sentinel in &mut self.sentinels {
            let _ = sentinel.kill();
            let _ = sentinel.wait();
        }
    }
}

/// A Redis Cluster of three masters, each with `replicas` replicas, on ports of the test's
/// own, keeping nothing on disk past the test; a node silent for a second counts as down.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    nodes: Vec<Option<Child>>,
    /// With TLS (the test certificates, between the nodes too) and this password, or neither.
    secured: Option<&'static str>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    pub fn start() -> Self {
        Self::started(0, None)
    }

    pub fn with_replicas(replicas: usize) -> Self {
        Self::started(replicas, None)
    }

    /// Three masters that speak only TLS, with the test certificates, and want `password`.
    pub fn start_secured(password: &'static str) -> Self {
        Self::started(0, Some(password))
    }

    /// How a node listens on `port`: plain, or TLS only with a password.
    fn listen_args(secured: Option<&'static str>, port: u16) -> Vec<String> {
        let Some(password) = secured else {
            return vec!["--port".into(), port.to_string()];
        };
        [
            ("--port", "0".to_owned()),
            ("--tls-port", port.to_string()),
            ("--tls-cluster", "yes".to_owned()),
            ("--requirepass", password.to_owned()),
            ("--masterauth", password.to_owned()),
        ]
        .into_iter()
        .flat_map(|(name, value)| [name.to_owned(), value])
        .chain(tls_files())
        .collect()
    }

    /// What `redis-cli` needs to reach the nodes.
    fn cli_args(&self) -> Vec<String> {
        let Some(password) = self.secured else {
            return Vec::new();
        };
        [
            "--tls",
            "--cacert",
            &tls_fixture("ca.pem"),
            "--no-auth-warning",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain(["-a".to_owned(), password.to_owned()])
        .collect()
    }

    fn started(replicas: usize, secured: Option<&'static str>) -> Self {
        let dir = tempfile::tempdir().expect("a directory for the nodes' files");
        let (ports, nodes): (Vec<u16>, Vec<Option<Child>>) = (0..3 * (1 + replicas))
            .map(|_| Self::node(dir.path(), secured))
            .map(|(port, child)| (port, Some(child)))
            .unzip();
        let cluster = Self {
            ports,
            nodes,
            secured,
            _dir: dir,
        };
        let addresses: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let status = Command::new("redis-cli")
            .args(cluster.cli_args())
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(status.success(), "redis-cli --cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        // Whole, and every replica in sync with its master (one that never synced would not
        // be promoted when its master dies).
        while !cluster
            .ports
            .iter()
            .all(|port| cluster.ok_on(*port) && cluster.synced(*port))
        {
            assert!(Instant::now() < deadline, "the cluster never came up");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// A node listening on its port and its bus. Another process may take either port between
    /// the check that it is free and the node's start (the machine's own outgoing connections
    /// draw from the same range): the node then exits, and another port is tried.
    fn node(dir: &std::path::Path, secured: Option<&'static str>) -> (u16, Child) {
        loop {
            let port = node_port();
            let mut child = Command::new("redis-server")
                .args(Self::listen_args(secured, port))
                .args(["--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", "1000"])
                .arg("--dir")
                .arg(dir)
                .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server runs cluster nodes too");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if child.try_wait().expect("its status").is_some() {
                    break;
                }
                if listens(port) && listens(port + BUS_OFFSET) {
                    return (port, child);
                }
                assert!(Instant::now() < deadline, "node {port} never listened");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn synced(&self, port: u16) -> bool {
        let replication = self.cli(port, &["INFO", "replication"]);
        replication.contains("role:master") || replication.contains("master_link_status:up")
    }

    /// Whether this node says the cluster is whole.
    pub fn ok_on(&self, port: u16) -> bool {
        self.cli(port, &["CLUSTER", "INFO"])
            .contains("cluster_state:ok")
    }

    /// The ports of the nodes that are masters now, as the first live node says.
    pub fn masters(&self) -> Vec<u16> {
        let live = self.live_port();
        self.cli(live, &["CLUSTER", "NODES"])
            .lines()
            .filter(|line| line.contains("master") && !line.contains("fail"))
            .filter_map(|line| {
                let address = line.split_whitespace().nth(1)?;
                address.split(['@', ':']).nth(1)?.parse().ok()
            })
            .collect()
    }

    fn live_port(&self) -> u16 {
        self.ports
            .iter()
            .zip(&self.nodes)
            .find_map(|(port, node)| node.as_ref().map(|_| *port))
            .expect("a live node")
    }

    /// The command that moves `slots` slots from the master on `from` to the master on `to`
    /// (run it where blocking is fine).
    pub fn reshard(&self, from: u16, to: u16, slots: u32) -> Command {
        let id = |port: u16| self.cli(port, &["CLUSTER", "MYID"]).trim().to_owned();
        let mut command = Command::new("redis-cli");
        command
            .args(["--cluster", "reshard", &format!("127.0.0.1:{from}")])
            .args(["--cluster-from", &id(from), "--cluster-to", &id(to)])
            .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
            .stdout(Stdio::null());
        command
    }

    /// Kills one node, as a crash would.
    pub fn kill(&mut self, port: u16) {
        let index = self
            .ports
            .iter()
            .position(|p| *p == port)
            .expect("a node of this cluster");
        if let Some(mut node) = self.nodes[index].take() {
            let _ = node.kill();
            let _ = node.wait();
        }
    }

    /// `REDIS_URL` for the service: every node (one would do).
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        match self.secured {
            Some(password) => format!("rediss+cluster://:{password}@{}", nodes.join(",")),
            None => format!("redis+cluster://{}", nodes.join(",")),
        }
    }

    /// What `redis-cli` prints for a command on one node.
    pub fn cli(&self, port: u16, command: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(self.cli_args())
            .args(["-p", &port.to_string()])
            .args(command)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut().filter_map(Option::take) {
            let mut node = node;
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listens(port) {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether something accepts connections on the port.
fn listens(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Forwards a local port to a server, and fails as a network does: `cut` drops every
/// connection and refuses new ones until `restore`; a connection can be cut right after it
/// forwarded a given message (`cut_after`), or everything frozen, open but silent, right
/// after the message that follows it (`freeze_after_next`), until `thaw`; or, in front of Redis,
/// keep answering commands while dropping every message pushed to a subscriber
/// (`drop_pushes`), until `pass_pushes`.
pub struct Proxy {
    pub port: u16,
    state: Arc<Mutex<ProxyState>>,
    stop: CancellationToken,
}

/// What a proxy does now.
struct ProxyState {
    /// Cancelled to drop every connection.
    cut: CancellationToken,
    /// Cancelled once to let frozen connections go on.
    thawed: CancellationToken,
    frozen: bool,
    /// Whether what Redis pushes to subscribers is dropped.
    dropping_pushes: bool,
    trap: Option<Trap>,
    /// How many traps went off.
    sprung: usize,
}

/// A one-shot trap on what clients send.
#[derive(Clone, Copy)]
enum Trap {
    /// Forward the message, swallow the server's answer, then drop that connection.
    Cut(&'static [u8]),
    /// Forward the message and the next one on its connection, then stop forwarding anything
    /// on any connection, without closing.
    Freeze(&'static [u8]),
    /// Forward the message, then drop every connection and refuse new ones (until `restore`).
    CutAll(&'static [u8]),
    /// Forward the message, then stop forwarding anything on any connection, without closing
    /// (until `thaw`): its answer never comes.
    FreezeOn(&'static [u8]),
}

impl Trap {
    fn pattern(self) -> &'static [u8] {
        match self {
            Trap::Cut(pattern)
            | Trap::Freeze(pattern)
            | Trap::CutAll(pattern)
            | Trap::FreezeOn(pattern) => pattern,
        }
    }
}

type Shared = Arc<Mutex<ProxyState>>;

impl Proxy {
    pub async fn start(upstream: (String, u16)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a proxy port");
        let port = listener.local_addr().expect("its address").port();
        let state = Arc::new(Mutex::new(ProxyState {
            cut: CancellationToken::new(),
            thawed: CancellationToken::new(),
            frozen: false,
            dropping_pushes: false,
            trap: None,
            sprung: 0,
        }));
        let stop = CancellationToken::new();
        let (shared, stopped) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stopped.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else {
                    continue;
                };
                let cut = shared.lock().expect("the state").cut.clone();
                if cut.is_cancelled() {
                    continue;
                }
                let (upstream, shared) = (upstream.clone(), shared.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let done = CancellationToken::new();
                    tokio::select! {
                        () = cut.cancelled() => {}
                        () = done.cancelled() => {}
                        () = forward(client, server, shared, done.clone()) => {}
                    }
                });
            }
        });
        Self { port, state, stop }
    }

    fn with<T>(&self, change: impl FnOnce(&mut ProxyState) -> T) -> T {
        change(&mut self.state.lock().expect("the state"))
    }

    pub fn cut(&self) {
        self.with(|state| state.cut.cancel());
    }

    pub fn restore(&self) {
        self.with(|state| state.cut = CancellationToken::new());
    }

    /// The next connection whose client sends `message` forwards it, then is dropped before
    /// the server's answer reaches the client (the server got it, the client never hears).
    pub fn cut_after(&self, message: &'static [u8]) {
        self.with(|state| state.trap = Some(Trap::Cut(message)));
    }

    /// The next connection whose client sends `message` forwards it; then the server is
    /// unreachable: every connection is dropped, new ones refused, until `restore`.
    pub fn cut_everything_after(&self, message: &'static [u8]) {
        self.with(|state| state.trap = Some(Trap::CutAll(message)));
    }

    /// Once a client sends `message`, it is forwarded, then every connection stops forwarding
    /// without closing (new ones too), so its answer never comes: a network gone silent
    /// mid-query.
    pub fn freeze_on(&self, message: &'static [u8]) {
        self.with(|state| state.trap = Some(Trap::FreezeOn(message)));
    }

    /// Once a client sends `message` and then one more message, both are forwarded, then every
    /// connection stops forwarding without closing (new ones too): a network gone silent. (The
    /// statement after a `BEGIN`, whatever its text: prepared statements do not resend it.)
    pub fn freeze_after_next(&self, message: &'static [u8]) {
        self.with(|state| state.trap = Some(Trap::Freeze(message)));
    }

    /// From the next value Redis sends on, its answers go through and the messages it pushes
    /// to subscribers do not: a subscription wedged while its connection looks healthy.
    pub fn drop_pushes(&self) {
        self.with(|state| state.dropping_pushes = true);
    }

    pub fn pass_pushes(&self) {
        self.with(|state| state.dropping_pushes = false);
    }

    /// How many traps went off so far.
    pub fn sprung(&self) -> usize {
        self.with(|state| state.sprung)
    }

    pub fn is_frozen(&self) -> bool {
        self.with(|state| state.frozen)
    }

    pub fn thaw(&self) {
        self.with(|state| {
            state.frozen = false;
            state.thawed.cancel();
            state.thawed = CancellationToken::new();
        });
    }
}

/// Waits while the proxy is frozen.
async fn unless_frozen(shared: &Shared) {
    let thawed = {
        let state = shared.lock().expect("the state");
        if !state.frozen {
            return;
        }
        state.thawed.clone()
    };
    thawed.cancelled().await;
}

/// Pumps both ways until either side closes, springing the trap on what the client sends.
async fn forward(client: TcpStream, server: TcpStream, shared: Shared, done: CancellationToken) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let sprung = CancellationToken::new();
    let upstream = async {
        let mut buffer = vec![0; 64 * 1024];
        let mut freezing = false;
        let mut cutting_all = false;
        loop {
            unless_frozen(&shared).await;
            let Ok(read) = client_read.read(&mut buffer).await else {
                return;
            };
            if read == 0 {
                return;
            }
            let chunk = &buffer[..read];
            let springs = {
                let mut state = shared.lock().expect("the state");
                let hit = state.trap.filter(|trap| contains(chunk, trap.pattern()));
                if hit.is_some() {
                    state.trap = None;
                    state.sprung += 1;
                }
                match hit {
                    Some(Trap::Cut(_)) => sprung.cancel(),
                    Some(Trap::Freeze(_)) => freezing = true,
                    // Its answer is swallowed as for `Cut`, before the message goes out, so
                    // the client never hears of it however the tasks are scheduled.
                    Some(Trap::CutAll(_)) => {
                        sprung.cancel();
                        cutting_all = true;
                    }
                    Some(Trap::FreezeOn(_)) => state.frozen = true,
                    None if freezing => state.frozen = true,
                    None => {}
                }
                hit.is_some() || freezing
            };
            // The messages that spring a trap still go through.
            if !springs {
                unless_frozen(&shared).await;
            }
            if server_write.write_all(chunk).await.is_err() {
                return;
            }
            if cutting_all {
                shared.lock().expect("the state").cut.cancel();
                return;
            }
            freezing &= !shared.lock().expect("the state").frozen;
        }
    };
    let downstream = async {
        let mut buffer = vec![0; 64 * 1024];
        // What Redis sent while pushes are dropped that is not yet a whole value.
        let mut pending = Vec::new();
        loop {
            unless_frozen(&shared).await;
            let Ok(read) = server_read.read(&mut buffer).await else {
                return;
            };
            if read == 0 {
                return;
            }
            if sprung.is_cancelled() {
                done.cancel();
                return;
            }
            unless_frozen(&shared).await;
            let dropping = shared.lock().expect("the state").dropping_pushes;
            let out = if dropping || !pending.is_empty() {
                pending.extend_from_slice(&buffer[..read]);
                Cow::Owned(if dropping {
                    crate::resp::without_pushes(&mut pending)
                } else {
                    std::mem::take(&mut pending)
                })
            } else {
                Cow::Borrowed(&buffer[..read])
            };
            if client_write.write_all(&out).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(upstream, downstream);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cut();
        self.thaw();
    }
}
