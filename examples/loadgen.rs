//! Load generator and benchmark: speaks the contract's core (REST rooms, ENTER and TALK over
//! /ws/chat), so it measures this service and the Node peer in `bench/peer`
//! alike. Prints figures (a table line, and with `--json` one JSON object per run); asserts
//! nothing. Run the server with CHAT_RATE_LIMIT=off. `scripts/bench` runs every scenario
//! against this service and the peer in one go and prints them side by side.
//!
//!     cargo run --release --example loadgen -- --base http://127.0.0.1:8080 --rooms 100 --members 10
//!
//! `--base` may list several instances of one cluster, comma-separated: each room's members
//! are then spread over them in turn (rooms are created through the first).
//!
//! Every member of a room also talks. By default each keeps at most `--window` of its own
//! TALKs unacknowledged (the sender's copy is the acknowledgement), so offered load follows
//! what the server can take ("unbounded"); with `--rate N` the members together send N TALKs
//! per second whatever comes back. Latency is from send to delivery, for every delivered copy.
//! Every run counts what must stay 0: events missing (a gap in a room's seqs), duplicated,
//! reordered, or delivered to a member of another room, and members closed early.
//!
//! `--pid` names the server process: its CPU time per delivered event, where that CPU went
//! thread by thread (the busiest thread's share shows whether one thread sets the pace), and
//! its RSS are read from /proc. The load generator's own CPU is always reported, so that it is never the
//! bottleneck unnoticed (at 100% of a core it is).
//!
//! Scenarios beyond plain fan-out, each an option that adds to the run:
//! - `--idle N`: before the talking, N more clients connect and ENTER (spread over the rooms),
//!   all at once, as after a restart (from source addresses 127.0.0.2 and up, so ports
//!   last): connect+ENTER latency (and the ENTER's own, from its socket open), connections
//!   per second, server RSS per connection while they idle (read after `--idle-for` seconds,
//!   1 by default), and RSS once they are gone again. With `--connect-rate R` they arrive R
//!   per second, evenly spaced, instead: the latency is then what each waits at that arrival
//!   rate, not its place in one queue of all of them.
//! - `--send edit|react`: once its first TALK is back, each member sends EDITs of it (or
//!   REACT and UNREACT of it in turn) instead of TALKs; they are counted and timed as TALKs
//!   are (reactions on the sender's own copy), to weigh them against the TALK path.
//! - `--secret S`: the server runs with `CHAT_JWT_SECRET=S`; each room is private and each
//!   member signs in with a token of its own and holds the `member` role, so every frame is
//!   checked against the room's rules (with `--idle` and `--slow`: not supported).
//! - `--webhook`: with `--secret`, a webhook for every room posts each stored event to a receiver
//!   in this process, which answers 204: the TALK path's figures while webhooks deliver, and
//!   the events the receiver got per second.
//! - `--slow N`: N more members of the first room that enter and then never read.
//! - `--resume N`: N of the talking members drop their connection every `--resume-every`
//!   seconds and come back with `lastSeq` while their room talks; the counters say whether
//!   resume lost or repeated anything.
//!
//! `--protocol stomp` does the same over `/ws/stomp` (each member subscribes to its room's
//! topic, then SENDs its ENTER and TALKs), to compare what a delivery costs in either framing.
//! `--ids off` sends TALKs without a `clientMsgId` (the send time then rides in the message),
//! to measure what the resend check costs the append path.

mod common;
use std::collections::HashMap;

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use common::{create_room, post_room, ws_url};

type Ws = tokio_tungstenite::WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Which endpoint the members speak.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    Chat,
    Stomp,
}

/// What each member sends once its first TALK is back (`--send`): the cost of the contract's
/// other kinds of event against a TALK's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Send {
    Talk,
    /// EDITs of its first TALK.
    Edit,
    /// REACT and UNREACT of its first TALK, in turn.
    React,
}

struct Options {
    bases: Vec<String>,
    label: String,
    rooms: usize,
    members: usize,
    window: usize,
    rate: u64,
    seconds: u64,
    idle: usize,
    idle_for: u64,
    /// Idle clients' connects per second; 0: all at once.
    connect_rate: u64,
    slow: usize,
    resume: usize,
    resume_every: u64,
    pid: Option<u32>,
    protocol: Protocol,
    ids: bool,
    send: Send,
    secret: Option<String>,
    webhook: bool,
    json: bool,
}

fn options() -> Options {
    let mut o = Options {
        bases: vec!["http://127.0.0.1:8080".into()],
        label: String::new(),
        rooms: 100,
        members: 10,
        window: 8,
        rate: 0,
        seconds: 10,
        idle: 0,
        idle_for: 1,
        connect_rate: 0,
        slow: 0,
        resume: 0,
        resume_every: 2,
        pid: None,
        protocol: Protocol::Chat,
        ids: true,
        send: Send::Talk,
        secret: None,
        webhook: false,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--json" {
            o.json = true;
            continue;
        }
        if flag == "--webhook" {
            o.webhook = true;
            continue;
        }
        let value = args.next().unwrap_or_default();
        let number = || {
            value
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("{flag} takes a number"))
        };
        match flag.as_str() {
            "--base" => o.bases = value.split(',').map(str::to_owned).collect(),
            "--label" => o.label = value.clone(),
            "--rooms" => o.rooms = number(),
            "--members" => o.members = number(),
            "--window" => o.window = number(),
            "--rate" => o.rate = number() as u64,
            "--seconds" => o.seconds = number() as u64,
            "--idle" => o.idle = number(),
            "--idle-for" => o.idle_for = number() as u64,
            "--connect-rate" => o.connect_rate = number() as u64,
            "--slow" => o.slow = number(),
            "--resume" => o.resume = number(),
            "--resume-every" => o.resume_every = number() as u64,
            "--pid" => o.pid = Some(number() as u32),
            "--ids" => o.ids = value != "off",
            "--secret" => o.secret = Some(value.clone()),
            "--send" => {
                o.send = match value.as_str() {
                    "talk" => Send::Talk,
                    "edit" => Send::Edit,
                    "react" => Send::React,
                    other => panic!("--send is talk, edit or react, not {other}"),
                }
            }
            "--protocol" => {
                o.protocol = match value.as_str() {
                    "chat" => Protocol::Chat,
                    "stomp" => Protocol::Stomp,
                    other => panic!("--protocol is chat or stomp, not {other}"),
                }
            }
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// What every run counts; the correctness counters must stay 0.
#[derive(Default)]
struct Totals {
    sent: AtomicU64,
    delivered: AtomicU64,
    closed_early: AtomicU64,
    missing: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    misdelivered: AtomicU64,
    resumes: AtomicU64,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A process's CPU time so far (user and system), from /proc ("self" for this one).
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports these in USER_HZ, 100 on every platform it runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// Each thread's name and CPU time so far, by thread id.
fn thread_times(pid: u32) -> HashMap<String, (String, Duration)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    tasks
        .filter_map(|task| {
            let tid = task.ok()?.file_name().into_string().ok()?;
            let name = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
            let used = cpu_time(&format!("{pid}/task/{tid}"))?;
            Some((tid, (name.trim().to_owned(), used)))
        })
        .collect()
}

/// Where the server's CPU went over a run: percent of a core per thread name (threads of one
/// name summed), and the busiest single thread's, which shows whether one thread set the pace.
fn thread_profile(
    before: &HashMap<String, (String, Duration)>,
    after: &HashMap<String, (String, Duration)>,
    elapsed: f64,
) -> Value {
    let percent = |used: Duration| (used.as_secs_f64() * 1000.0 / elapsed).round() / 10.0;
    let mut by_name: HashMap<&str, Duration> = HashMap::new();
    let mut busiest = Duration::ZERO;
    for (tid, (name, now)) in after {
        let then = before.get(tid).map_or(Duration::ZERO, |(_, then)| *then);
        let used = now.saturating_sub(then);
        *by_name.entry(name).or_default() += used;
        busiest = busiest.max(used);
    }
    let names: serde_json::Map<String, Value> = by_name
        .into_iter()
        .filter(|(_, used)| !used.is_zero())
        .map(|(name, used)| (name.to_owned(), json!(percent(used))))
        .collect();
    json!({"percent_of_a_core": names, "busiest_thread_percent": percent(busiest)})
}

/// A token for `name` (with `roles`), signed with the server's `CHAT_JWT_SECRET`, valid for an
/// hour.
fn token(secret: &str, name: &str, roles: &[&str]) -> String {
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| now.as_secs() + 3600);
    let claims = json!({"sub": name, "exp": expires, "roles": roles});
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("a token")
}

/// With `--secret`: a private room, made by an owner of its own, in which each of `members`
/// is given the `member` role, so every frame of theirs goes through the room's rules.
async fn private_room(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    name: &str,
    members: impl Iterator<Item = String>,
) -> String {
    let owner = token(secret, "bench-owner", &[]);
    let body = json!({"name": name, "visibility": "private"});
    let room_id = post_room(http, base, &body, Some(&owner)).await;
    for member in members {
        let granted = http
            .put(format!("{base}/api/rooms/{room_id}/roles/{member}"))
            .bearer_auth(&owner)
            .json(&json!({"role": "member"}))
            .send()
            .await
            .expect("PUT a role");
        assert!(
            granted.status().is_success(),
            "granting a role: {}",
            granted.status()
        );
    }
    room_id
}

/// With `--webhook`: a receiver in this process that answers 204 to every delivery and counts
/// them, and a webhook for every room pointing at it (made by an admin); the count.
async fn webhook_receiver(http: &reqwest::Client, base: &str, secret: &str) -> Arc<AtomicU64> {
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let server = actix_web::HttpServer::new(move || {
        let counter = counter.clone();
        // The body is read, as a receiver would: one left unread closes the connection.
        actix_web::App::new().default_service(actix_web::web::to(
            move |_: actix_web::web::Bytes| {
                counter.fetch_add(1, Ordering::Relaxed);
                async { actix_web::HttpResponse::NoContent().finish() }
            },
        ))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("the webhook receiver binds");
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    let admin = token(secret, "bench-admin", &["admin"]);
    let hook = http
        .post(format!("{base}/api/webhooks"))
        .bearer_auth(&admin)
        .json(&json!({"url": format!("http://127.0.0.1:{port}/hook")}))
        .send()
        .await
        .expect("POST /api/webhooks");
    assert_eq!(
        hook.status(),
        201,
        "the webhook is created (CHAT_WEBHOOK_ALLOW_PRIVATE=true?)"
    );
    received
}

fn stomp_url(base: &str) -> String {
    format!("{}/ws/stomp", base.replacen("http", "ws", 1))
}

/// What a member sends to enter its room (and, on STOMP, to connect and subscribe first).
fn opening(protocol: Protocol, room_id: &str, name: &str, last_seq: Option<u64>) -> String {
    let mut enter = json!({"type": "ENTER", "roomId": room_id, "sender": name});
    if let Some(last_seq) = last_seq {
        enter["lastSeq"] = json!(last_seq);
    }
    let enter = enter.to_string();
    match protocol {
        Protocol::Chat => enter,
        Protocol::Stomp => format!(
            "CONNECT\naccept-version:1.2\n\n\0SUBSCRIBE\nid:room\ndestination:/topic/rooms/{room_id}\n\n\0{}",
            stomp_send(room_id, &enter)
        ),
    }
}

fn stomp_send(room_id: &str, body: &str) -> String {
    format!("SEND\ndestination:/app/rooms/{room_id}\n\n{body}\0")
}

/// The fields of a delivered event this program reads, borrowed from the frame where they
/// can be: parsing every event into a `Value` (a map of owned strings) was about a third of
/// this program's CPU in the unbounded fan-out, whose ceiling it is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delivered<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    room_id: Option<Cow<'a, str>>,
    seq: Option<u64>,
    #[serde(borrow)]
    sender: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
}

impl Delivered<'_> {
    fn is_from(&self, name: &str) -> bool {
        self.sender.as_deref() == Some(name)
    }
}

/// The event a server message carries, if it carries one.
fn event_of(protocol: Protocol, text: &str) -> Option<Delivered<'_>> {
    let json = match protocol {
        Protocol::Chat => text,
        Protocol::Stomp => text
            .strip_prefix("MESSAGE\n")?
            .split_once("\n\n")?
            .1
            .strip_suffix('\0')?,
    };
    serde_json::from_str(json).ok()
}

/// What every member shares: where to connect, the load, the clock and the counters.
struct Run {
    protocol: Protocol,
    ids: bool,
    send: Send,
    /// Signs each member's token, with `--secret`.
    secret: Option<String>,
    urls: Vec<String>,
    window: usize,
    /// Between one member's TALKs when the load is a rate; None: windowed.
    every: Option<Duration>,
    resume_every: Duration,
    /// Connections made so far, to spread their source addresses.
    connections: AtomicU64,
    clock: Instant,
    running: AtomicBool,
    totals: Totals,
    ready: tokio::sync::Barrier,
}

/// One member's view of its room: checks every event it gets against the seqs before it.
struct Seen {
    room_id: String,
    last_seq: Option<u64>,
}

impl Seen {
    fn check(&mut self, event: &Delivered, totals: &Totals) {
        if event.room_id.as_deref() != Some(self.room_id.as_str()) {
            totals.misdelivered.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(seq) = event.seq else {
            return;
        };
        match self.last_seq {
            Some(last) if seq == last => {
                totals.duplicated.fetch_add(1, Ordering::Relaxed);
            }
            Some(last) if seq < last => {
                totals.reordered.fetch_add(1, Ordering::Relaxed);
            }
            Some(last) => {
                totals.missing.fetch_add(seq - last - 1, Ordering::Relaxed);
                self.last_seq = Some(seq);
            }
            None => self.last_seq = Some(seq),
        }
    }
}

async fn connect(run: &Run, via: usize, room_id: &str, name: &str, last_seq: Option<u64>) -> Ws {
    let mut ws = open(run, via, name).await;
    enter(run, &mut ws, room_id, name, last_seq).await;
    ws
}

/// Sends the opening (the ENTER, over STOMP after its CONNECT and SUBSCRIBE).
async fn enter(run: &Run, ws: &mut Ws, room_id: &str, name: &str, last_seq: Option<u64>) {
    let opening = opening(run.protocol, room_id, name, last_seq);
    ws.send(Message::text(opening)).await.expect("ENTER");
}

/// A WebSocket to the instance `via` picks, its handshake done, nothing sent yet.
async fn open(run: &Run, via: usize, name: &str) -> Ws {
    // tungstenite zeroes its whole read buffer (128 KiB by default) at every read: that, not
    // the server, was most of this program's CPU. Chat frames are small.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let url = &run.urls[via % run.urls.len()];
    let stream = tcp_connect(run, url).await;
    let url = match &run.secret {
        Some(secret) => format!("{url}?access_token={}", token(secret, name, &[])),
        None => url.clone(),
    };
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .expect("connect");
    ws
}

/// A TCP connection to the server the URL names. To a loopback server each one comes from
/// the next of 250 source addresses (127.0.0.2 and up), so that tens of thousands of
/// connections, and those of the runs just before in TIME_WAIT, do not run out of the
/// ~28,000 ephemeral ports one source address has.
async fn tcp_connect(run: &Run, url: &str) -> MaybeTlsStream<TcpStream> {
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next());
    let server: SocketAddr = authority
        .and_then(|authority| authority.parse().ok())
        .unwrap_or_else(|| panic!("--base is http://<ip>:<port>, not {url}"));
    let socket = TcpSocket::new_v4().expect("a socket");
    if server.ip().is_loopback() {
        let n = run.connections.fetch_add(1, Ordering::Relaxed) % 250;
        let source = Ipv4Addr::new(127, 0, 0, 2 + n as u8);
        socket
            .bind(SocketAddr::from((source, 0)))
            .expect("a source address");
    }
    let stream = socket.connect(server).await.expect("connect");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    MaybeTlsStream::Plain(stream)
}

/// This member's next frame: a TALK, or once its first TALK (`target`) is stored, what
/// `--send` asks for about it (after `reactions` of them: a REACT, then an UNREACT, in turn).
fn talk(
    run: &Run,
    room_id: &str,
    name: &str,
    sent: u64,
    target: Option<u64>,
    reactions: usize,
) -> String {
    // The send time, and a count so that no two of this member's TALKs share an id.
    let stamp = format!("{}-{sent}", run.clock.elapsed().as_micros());
    let message = format!("hello there {stamp}");
    let mut talk = match (run.send, target) {
        (Send::Edit, Some(target)) => {
            json!({"type": "EDIT", "roomId": room_id, "sender": name, "targetSeq": target, "message": message})
        }
        (Send::React, Some(target)) => {
            let kind = if reactions.is_multiple_of(2) {
                "REACT"
            } else {
                "UNREACT"
            };
            json!({"type": kind, "roomId": room_id, "sender": name, "targetSeq": target, "emoji": "👍"})
        }
        _ => json!({"type": "TALK", "roomId": room_id, "sender": name, "message": message}),
    };
    if run.ids && talk["type"] == "TALK" {
        talk["clientMsgId"] = json!(stamp);
    }
    let talk = talk.to_string();
    match run.protocol {
        Protocol::Chat => talk,
        Protocol::Stomp => stomp_send(room_id, &talk),
    }
}

/// Microseconds from a TALK's send to now, from the stamp in its message.
fn latency(run: &Run, event: &Delivered) -> Option<u32> {
    let stamp = event.message.as_deref()?.strip_prefix("hello there ")?;
    let sent = stamp.split_once('-')?.0.parse::<u128>().ok()?;
    Some(since(run, sent))
}

/// Microseconds from `sent` (on the run's clock) to now.
fn since(run: &Run, sent: u128) -> u32 {
    micros(run.clock.elapsed().as_micros().saturating_sub(sent))
}

/// Microseconds as a latency is kept: a `u32`, at most about 71 minutes.
fn micros(micros: u128) -> u32 {
    u32::try_from(micros).unwrap_or(u32::MAX)
}

/// One member: enters (through instance `via`), then talks until told to stop, recording
/// latencies and checking what it gets; a resuming member drops and comes back now and then.
/// `phase` (0 to 1) spreads the members' sends over the period, so a rate is a steady stream
/// and not a burst from everyone at once.
async fn member(
    run: Arc<Run>,
    via: usize,
    room_id: String,
    name: String,
    resumes: bool,
    phase: f64,
) -> Vec<u32> {
    let totals = &run.totals;
    let mut ws = connect(&run, via, &room_id, &name, None).await;
    run.ready.wait().await;
    let mut seen = Seen {
        room_id: room_id.clone(),
        last_seq: None,
    };
    let mut latencies = Vec::new();
    let mut in_flight = 0;
    let mut sent = 0u64;
    // This member's first TALK, once back: what its EDITs and reactions are about.
    let mut target: Option<u64> = None;
    // When each of its reactions in flight was sent (they carry no text to stamp).
    let mut reacting: std::collections::VecDeque<u128> = std::collections::VecDeque::new();
    let mut reactions = 0;
    let mut next_talk = tokio::time::Instant::now() + run.every.unwrap_or_default().mul_f64(phase);
    let mut next_drop = tokio::time::Instant::now() + run.resume_every;
    while run.running.load(Ordering::Relaxed) {
        if resumes && tokio::time::Instant::now() >= next_drop {
            // Gone without a word, as a dropped network would be; back with where it was.
            drop(ws);
            ws = connect(&run, via, &room_id, &name, seen.last_seq).await;
            totals.resumes.fetch_add(1, Ordering::Relaxed);
            in_flight = 0;
            next_drop = tokio::time::Instant::now() + run.resume_every;
        }
        // At a rate: every TALK whose time has come; windowed: until the window is full.
        let may_send = |next_talk: tokio::time::Instant, in_flight: usize| match run.every {
            Some(_) => tokio::time::Instant::now() >= next_talk,
            None => in_flight < run.window,
        };
        while may_send(next_talk, in_flight) {
            next_talk += run.every.unwrap_or_default();
            in_flight += 1;
            sent += 1;
            let text = talk(&run, &room_id, &name, sent, target, reactions);
            if run.send == Send::React && target.is_some() {
                reacting.push_back(run.clock.elapsed().as_micros());
                reactions += 1;
            }
            if ws.send(Message::text(text)).await.is_err() {
                totals.closed_early.fetch_add(1, Ordering::Relaxed);
                return latencies;
            }
            totals.sent.fetch_add(1, Ordering::Relaxed);
        }
        let due = match run.every {
            Some(_) => next_talk,
            None => tokio::time::Instant::now() + Duration::from_secs(5),
        };
        let wake = if resumes { due.min(next_drop) } else { due };
        let frame = tokio::select! {
            frame = ws.next() => frame,
            () = tokio::time::sleep_until(wake), if run.every.is_some() || resumes => continue,
            () = tokio::time::sleep(Duration::from_secs(5)) => None,
        };
        let frame = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            _ => {
                if run.running.load(Ordering::Relaxed) {
                    totals.closed_early.fetch_add(1, Ordering::Relaxed);
                }
                return latencies;
            }
        };
        let Some(event) = event_of(run.protocol, &frame) else {
            continue;
        };
        if event.kind == "ERROR" {
            continue;
        }
        seen.check(&event, totals);
        let kind = event.kind.as_ref();
        if !["TALK", "EDIT", "REACT", "UNREACT"].contains(&kind) {
            continue;
        }
        totals.delivered.fetch_add(1, Ordering::Relaxed);
        let own = event.is_from(&name);
        if kind.ends_with("REACT") {
            // Timed on the sender's own copy, the one event of the kind it can tell apart.
            let sent = if own { reacting.pop_front() } else { None };
            latencies.extend(sent.map(|sent| since(&run, sent)));
        } else {
            latencies.extend(latency(&run, &event));
        }
        if own {
            in_flight = in_flight.saturating_sub(1);
            if kind == "TALK" {
                target = target.or(event.seq);
            }
        }
    }
    latencies
}

/// A member that enters and then never reads: the server must close it, not wait for it.
async fn slow_member(run: Arc<Run>, room_id: String, name: String) -> Ws {
    connect(&run, 0, &room_id, &name, None).await
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

/// What one client of a connect storm waited, in µs.
struct Latency {
    /// From its first step (the TCP connect) to its own ENTER back.
    whole: u32,
    /// From its ENTER sent, on a WebSocket already open, to its ENTER back: the part of the
    /// wait that is not the queue of handshakes.
    enter: u32,
}

/// Connects `count` clients at once (or `rate` per second), each entering one of `rooms` and
/// waiting for its own ENTER to come back: latencies (µs: the whole wait, then the ENTER's
/// alone, each sorted), and the clients, left open and reading what comes (as a page would)
/// until aborted.
async fn connect_storm(
    run: &Arc<Run>,
    rooms: &[String],
    count: usize,
    rate: u64,
) -> ((Vec<u32>, Vec<u32>), Vec<tokio::task::JoinHandle<()>>, f64) {
    let started = Instant::now();
    let clients = (0..count).map(|i| {
        let run = run.clone();
        let room_id = rooms[i % rooms.len()].clone();
        let starts_at = match rate {
            0 => started,
            rate => started + Duration::from_secs_f64(i as f64 / rate as f64),
        };
        tokio::spawn(async move {
            tokio::time::sleep_until(starts_at.into()).await;
            let began = Instant::now();
            let name = format!("idle{i}");
            let mut ws = open(&run, i, &name).await;
            let opened = Instant::now();
            enter(&run, &mut ws, &room_id, &name, None).await;
            while let Some(Ok(frame)) = ws.next().await {
                let Message::Text(text) = frame else { continue };
                let Some(event) = event_of(run.protocol, &text) else {
                    continue;
                };
                if event.kind == "ENTER" && event.is_from(&name) {
                    break;
                }
            }
            let latency = Latency {
                whole: micros(began.elapsed().as_micros()),
                enter: micros(opened.elapsed().as_micros()),
            };
            let reader = tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
            (latency, reader)
        })
    });
    let clients: Vec<_> = clients.collect();
    let mut wholes = Vec::with_capacity(count);
    let mut enters = Vec::with_capacity(count);
    let mut open = Vec::with_capacity(count);
    for client in clients {
        let (latency, reader) = client.await.expect("an idle client");
        wholes.push(latency.whole);
        enters.push(latency.enter);
        open.push(reader);
    }
    let per_second = count as f64 / started.elapsed().as_secs_f64();
    wholes.sort_unstable();
    enters.sort_unstable();
    ((wholes, enters), open, per_second)
}

#[tokio::main]
async fn main() {
    let o = options();
    let http = common::http_client();
    let url = match o.protocol {
        Protocol::Chat => ws_url,
        Protocol::Stomp => stomp_url,
    };
    let talkers = o.rooms * o.members;
    let run = Arc::new(Run {
        protocol: o.protocol,
        ids: o.ids,
        send: o.send,
        secret: o.secret.clone(),
        urls: o.bases.iter().map(|base| url(base)).collect(),
        window: o.window,
        every: (o.rate > 0).then(|| Duration::from_secs_f64(talkers as f64 / o.rate as f64)),
        resume_every: Duration::from_secs(o.resume_every),
        connections: AtomicU64::new(0),
        clock: Instant::now(),
        running: AtomicBool::new(true),
        totals: Totals::default(),
        ready: tokio::sync::Barrier::new(talkers + 1),
    });
    let mut rooms = Vec::new();
    for r in 0..o.rooms.max(1) {
        let name = format!("bench {r}");
        let room_id = match &o.secret {
            None => create_room(&http, &o.bases[0], &name).await,
            Some(secret) => {
                assert!(
                    o.idle == 0 && o.slow == 0,
                    "--secret is for talking members only"
                );
                let names = (0..o.members).map(|m| format!("r{r}m{m}"));
                private_room(&http, &o.bases[0], secret, &name, names).await
            }
        };
        rooms.push(room_id);
    }
    let hooked = match (&o.secret, o.webhook) {
        (Some(secret), true) => Some(webhook_receiver(&http, &o.bases[0], secret).await),
        (None, true) => panic!("--webhook needs --secret"),
        (_, false) => None,
    };
    let mut report = json!({
        "label": o.label, "protocol": format!("{:?}", o.protocol).to_lowercase(),
        "instances": o.bases.len(), "rooms": o.rooms, "members": o.members,
        "window": o.window, "rate": o.rate, "slow": o.slow, "resume": o.resume,
    });
    let rss_start = o.pid.and_then(rss_kib);
    if o.idle > 0 {
        let ((latencies, enters), open, per_second) =
            connect_storm(&run, &rooms, o.idle, o.connect_rate).await;
        // Let the last ENTERs reach everyone, so what is measured is idle connections.
        tokio::time::sleep(Duration::from_secs(o.idle_for)).await;
        let rss_idle = o.pid.and_then(rss_kib);
        for reader in open {
            reader.abort();
        }
        report["idle"] = json!(o.idle);
        report["connect_rate"] = json!(o.connect_rate);
        report["connect_enter_p50_ms"] = json!(percentile(&latencies, 0.5));
        report["connect_enter_p99_ms"] = json!(percentile(&latencies, 0.99));
        report["enter_p50_ms"] = json!(percentile(&enters, 0.5));
        report["enter_p99_ms"] = json!(percentile(&enters, 0.99));
        report["connects_per_s"] = json!(per_second.round());
        if let (Some(before), Some(idle)) = (rss_start, rss_idle) {
            report["rss_per_idle_connection_kib"] =
                json!(((idle.saturating_sub(before)) as f64 / o.idle as f64 * 10.0).round() / 10.0);
            // The server sees the connections go, then gives freed memory back (every 5 s).
            tokio::time::sleep(Duration::from_secs(7)).await;
            report["rss_kib"] = json!({"start": before, "idle": idle,
                "after_idle": o.pid.and_then(rss_kib)});
        }
    }
    let mut slow = Vec::new();
    for s in 0..o.slow {
        slow.push(slow_member(run.clone(), rooms[0].clone(), format!("slow{s}")).await);
    }
    let mut tasks = Vec::new();
    for (r, room_id) in rooms.iter().enumerate().take(o.rooms) {
        for m in 0..o.members {
            let resumes = r * o.members + m < o.resume;
            let name = format!("r{r}m{m}");
            let phase = (r * o.members + m) as f64 / talkers as f64;
            tasks.push(tokio::spawn(member(
                run.clone(),
                m,
                room_id.clone(),
                name,
                resumes,
                phase,
            )));
        }
    }
    if talkers > 0 {
        run.ready.wait().await;
        let totals = &run.totals;
        let started = Instant::now();
        let server_cpu0 = o.pid.and_then(|pid| cpu_time(&pid.to_string()));
        let threads0 = o.pid.map(thread_times);
        let own_cpu0 = cpu_time("self");
        let hooked0 = hooked.as_ref().map(|count| count.load(Ordering::Relaxed));
        let (sent0, delivered0) = (
            totals.sent.load(Ordering::Relaxed),
            totals.delivered.load(Ordering::Relaxed),
        );
        tokio::time::sleep(Duration::from_secs(o.seconds)).await;
        let elapsed = started.elapsed().as_secs_f64();
        let sent = totals.sent.load(Ordering::Relaxed) - sent0;
        let delivered = totals.delivered.load(Ordering::Relaxed) - delivered0;
        let server_cpu = o
            .pid
            .and_then(|pid| cpu_time(&pid.to_string()))
            .zip(server_cpu0);
        let threads = o.pid.map(thread_times).zip(threads0);
        let own_cpu = cpu_time("self").zip(own_cpu0);
        if let (Some(count), Some(then)) = (&hooked, hooked0) {
            let received = count.load(Ordering::Relaxed) - then;
            report["webhook_received_per_s"] = json!((received as f64 / elapsed).round());
        }
        run.running.store(false, Ordering::Relaxed);
        let mut latencies: Vec<u32> = Vec::new();
        for task in tasks {
            latencies.extend(task.await.unwrap_or_default());
        }
        latencies.sort_unstable();
        report["seconds"] = json!((elapsed * 10.0).round() / 10.0);
        report["sent_per_s"] = json!((sent as f64 / elapsed).round());
        report["delivered_per_s"] = json!((delivered as f64 / elapsed).round());
        report["p50_ms"] = json!(percentile(&latencies, 0.5));
        report["p99_ms"] = json!(percentile(&latencies, 0.99));
        report["max_ms"] = json!(percentile(&latencies, 1.0));
        if let Some((now, then)) = server_cpu {
            let used = (now - then).as_secs_f64();
            report["server_cpu_us_per_delivery"] =
                json!((used * 1e7 / delivered.max(1) as f64).round() / 10.0);
        }
        if let Some((after, before)) = threads {
            report["server_threads"] = thread_profile(&before, &after, elapsed);
        }
        if let Some((now, then)) = own_cpu {
            report["loadgen_cpu_percent"] =
                json!(((now - then).as_secs_f64() * 100.0 / elapsed).round());
        }
    }
    let totals = &run.totals;
    for (name, counter) in [
        ("missing", &totals.missing),
        ("duplicated", &totals.duplicated),
        ("reordered", &totals.reordered),
        ("misdelivered", &totals.misdelivered),
        ("closed_early", &totals.closed_early),
        ("resumes", &totals.resumes),
    ] {
        report[name] = json!(counter.load(Ordering::Relaxed));
    }
    if let Some(pid) = o.pid {
        report["rss_end_kib"] = json!(rss_kib(pid));
    }
    drop(slow);
    print_report(&report, o.json);
}

fn print_report(report: &Value, as_json: bool) {
    if as_json {
        println!("{report}");
        return;
    }
    let Value::Object(fields) = report else {
        return;
    };
    let line: Vec<String> = fields
        .iter()
        .filter(|(_, value)| !value.is_null() && *value != "")
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    println!("{}", line.join("  "));
}
