//! Load generator: speaks the contract's core (REST rooms, ENTER and TALK over /ws/chat), so it
//! measures this service and the Node peer in `../shared/peers/node-ws` alike. Prints figures;
//! asserts nothing. Run the server with CHAT_RATE_LIMIT=off.
//!
//!     cargo run --release --example loadgen -- --base http://127.0.0.1:8080 --rooms 100 --members 10
//!
//! `--base` may list several instances of one cluster, comma-separated: each room's members
//! are then spread over them in turn (rooms are created through the first).
//!
//! Every member of a room also talks, keeping at most `--window` of its own TALKs
//! unacknowledged (the sender's copy is the acknowledgement), so offered load follows what
//! the server can take without closing anyone as slow. Latency is from send to delivery, for
//! every delivered copy. With `--pid`, the server's CPU time per delivered event is read from
//! /proc, and its RSS before and after `--idle` extra idle connections are opened.
//!
//! `--protocol stomp` does the same over `/ws/stomp` (each member subscribes to its room's
//! topic, then SENDs its ENTER and TALKs), to compare what a delivery costs in either framing.
//! `--ids off` sends TALKs without a `clientMsgId` (the send time then rides in the message),
//! to measure what the resend check costs the append path.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use common::{create_room, ws_url};

/// Which endpoint the members speak.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    Chat,
    Stomp,
}

struct Options {
    bases: Vec<String>,
    rooms: usize,
    members: usize,
    window: usize,
    seconds: u64,
    idle: usize,
    pid: Option<u32>,
    protocol: Protocol,
    ids: bool,
}

fn options() -> Options {
    let mut o = Options {
        bases: vec!["http://127.0.0.1:8080".into()],
        rooms: 100,
        members: 10,
        window: 8,
        seconds: 10,
        idle: 0,
        pid: None,
        protocol: Protocol::Chat,
        ids: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        let number = || {
            value
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("{} takes a number", pair[0]))
        };
        match pair[0].as_str() {
            "--base" => o.bases = value.split(',').map(str::to_owned).collect(),
            "--rooms" => o.rooms = number(),
            "--members" => o.members = number(),
            "--window" => o.window = number(),
            "--seconds" => o.seconds = number() as u64,
            "--idle" => o.idle = number(),
            "--pid" => o.pid = Some(number() as u32),
            "--ids" => o.ids = value != "off",
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

#[derive(Default)]
struct Totals {
    sent: AtomicU64,
    delivered: AtomicU64,
    closed_early: AtomicU64,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The server's CPU time so far (user and system), from /proc.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports these in USER_HZ, 100 on every platform it runs on.
    Some(Duration::from_millis(ticks * 10))
}

fn stomp_url(base: &str) -> String {
    format!("{}/ws/stomp", base.replacen("http", "ws", 1))
}

/// What a member sends to enter its room (and, on STOMP, to connect and subscribe first).
fn opening(protocol: Protocol, room_id: &str, name: &str) -> String {
    let enter = json!({"type": "ENTER", "roomId": room_id, "sender": name}).to_string();
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

/// The event a server message carries, if it carries one.
fn event_of(protocol: Protocol, text: &str) -> Option<Value> {
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

/// What every member shares: where to connect, the window, the clock and the counters.
struct Run {
    protocol: Protocol,
    ids: bool,
    urls: Vec<String>,
    window: usize,
    clock: Instant,
    running: AtomicBool,
    totals: Totals,
    ready: tokio::sync::Barrier,
}

/// One member: enters (through instance `via`), then talks within its window until told to
/// stop, recording latencies.
async fn member(run: Arc<Run>, via: usize, room_id: String, name: String) -> Vec<u32> {
    let Run {
        window,
        clock,
        running,
        totals,
        ready,
        ..
    } = &*run;
    let window = *window;
    let (ws, _) = tokio_tungstenite::connect_async(&run.urls[via % run.urls.len()])
        .await
        .expect("connect");
    let (mut sink, mut stream) = ws.split();
    let protocol = run.protocol;
    sink.send(Message::text(opening(protocol, &room_id, &name)))
        .await
        .expect("ENTER");
    ready.wait().await;
    let mut latencies = Vec::new();
    let mut in_flight = 0;
    let mut sent = 0u64;
    while running.load(Ordering::Relaxed) {
        while in_flight < window {
            // The send time, and a count so that no two of this member's TALKs share an id.
            let stamp = format!("{}-{sent}", clock.elapsed().as_micros());
            sent += 1;
            let mut talk = json!({"type": "TALK", "roomId": room_id, "sender": name, "message": format!("hello there {stamp}")});
            if run.ids {
                talk["clientMsgId"] = json!(stamp);
            }
            let talk = talk.to_string();
            let text = match protocol {
                Protocol::Chat => talk,
                Protocol::Stomp => stomp_send(&room_id, &talk),
            };
            if sink.send(Message::text(text)).await.is_err() {
                totals.closed_early.fetch_add(1, Ordering::Relaxed);
                return latencies;
            }
            totals.sent.fetch_add(1, Ordering::Relaxed);
            in_flight += 1;
        }
        let frame = match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(_))) => continue,
            _ => {
                totals.closed_early.fetch_add(1, Ordering::Relaxed);
                return latencies;
            }
        };
        let Some(event) = event_of(protocol, &frame) else {
            continue;
        };
        if event["type"] != "TALK" {
            continue;
        }
        totals.delivered.fetch_add(1, Ordering::Relaxed);
        let stamp = event["message"]
            .as_str()
            .and_then(|m| m.strip_prefix("hello there "));
        if let Some(sent) = stamp
            .and_then(|stamp| stamp.split_once('-'))
            .and_then(|(micros, _)| micros.parse::<u128>().ok())
        {
            let micros = clock.elapsed().as_micros().saturating_sub(sent);
            latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
        }
        if event["sender"] == name {
            in_flight -= 1;
        }
    }
    latencies
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

async fn idle_memory(o: &Options, pid: u32) {
    let before = rss_kib(pid).unwrap_or(0);
    let mut idle = Vec::with_capacity(o.idle);
    for _ in 0..o.idle {
        idle.push(
            tokio_tungstenite::connect_async(ws_url(&o.bases[0]))
                .await
                .expect("idle connect")
                .0,
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(pid).unwrap_or(0);
    let per = (after.saturating_sub(before)) as f64 / o.idle as f64;
    println!(
        "idle connections: {}  server RSS {before} KiB -> {after} KiB  ({per:.1} KiB per connection)",
        o.idle
    );
}

#[tokio::main]
async fn main() {
    let o = options();
    let http = reqwest::Client::new();
    if let (Some(pid), true) = (o.pid, o.idle > 0) {
        idle_memory(&o, pid).await;
    }
    let url = match o.protocol {
        Protocol::Chat => ws_url,
        Protocol::Stomp => stomp_url,
    };
    let run = Arc::new(Run {
        protocol: o.protocol,
        ids: o.ids,
        urls: o.bases.iter().map(|base| url(base)).collect(),
        window: o.window,
        clock: Instant::now(),
        running: AtomicBool::new(true),
        totals: Totals::default(),
        ready: tokio::sync::Barrier::new(o.rooms * o.members + 1),
    });
    let mut tasks = Vec::new();
    for r in 0..o.rooms {
        let room_id = create_room(&http, &o.bases[0], &format!("bench {r}")).await;
        for m in 0..o.members {
            tasks.push(tokio::spawn(member(
                run.clone(),
                m,
                room_id.clone(),
                format!("r{r}m{m}"),
            )));
        }
    }
    run.ready.wait().await;
    let totals = &run.totals;
    let started = Instant::now();
    let cpu0 = o.pid.and_then(cpu_time);
    let (sent0, delivered0) = (
        totals.sent.load(Ordering::Relaxed),
        totals.delivered.load(Ordering::Relaxed),
    );
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let sent = totals.sent.load(Ordering::Relaxed) - sent0;
    let delivered = totals.delivered.load(Ordering::Relaxed) - delivered0;
    let cpu = o
        .pid
        .and_then(cpu_time)
        .zip(cpu0)
        .map(|(now, then)| now - then);
    run.running.store(false, Ordering::Relaxed);
    let mut latencies: Vec<u32> = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap_or_default());
    }
    latencies.sort_unstable();
    println!(
        "{:?}, instances {}, rooms {} x members {} (window {}), {:.1} s: {:.0} TALKs/s sent, {:.0} events/s delivered",
        o.protocol,
        o.bases.len(),
        o.rooms,
        o.members,
        o.window,
        elapsed,
        sent as f64 / elapsed,
        delivered as f64 / elapsed
    );
    println!(
        "latency ms: p50 {:.2}  p99 {:.2}  max {:.2}   closed early: {}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        totals.closed_early.load(Ordering::Relaxed)
    );
    if let Some(cpu) = cpu {
        let per_event = cpu.as_secs_f64() * 1e6 / delivered.max(1) as f64;
        println!("server CPU {cpu:.2?}: {per_event:.2} µs per delivered event");
    }
    if let Some(pid) = o.pid {
        println!("server RSS after run: {} KiB", rss_kib(pid).unwrap_or(0));
    }
}
