//! How long deleting a big room holds up talk in other rooms. Prints figures; asserts nothing.
//! Run the server with CHAT_RATE_LIMIT=off.
//!
//!     cargo run --release --example delete_stall -- --base http://127.0.0.1:8080 --events 100000
//!
//! Fills one room with `--events` TALKs, then keeps one TALK at a time in flight in another
//! room (a probe) while the big room is deleted, and reports the probe's round trips (send to
//! acknowledgement) before and after the DELETE, and how long the DELETE itself took.

mod common;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use common::{create_room, ws_url};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// TALKs in flight while filling the big room.
const FILL_WINDOW: usize = 256;
/// How long the probe runs before the DELETE, and after it.
const BEFORE: Duration = Duration::from_millis(500);
const AFTER: Duration = Duration::from_secs(2);

fn options() -> (String, usize) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut base, mut events) = ("http://127.0.0.1:8080".to_owned(), 100_000);
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--base" => base = value,
            "--events" => events = value.parse().expect("--events takes a number"),
            other => panic!("unknown option {other}"),
        }
    }
    (base, events)
}

async fn member(base: &str, room_id: &str, sender: &str) -> Socket {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url(base))
        .await
        .expect("WebSocket connects");
    let enter = json!({"type": "ENTER", "roomId": room_id, "sender": sender});
    ws.send(Message::text(enter.to_string()))
        .await
        .expect("ENTER");
    next_event(&mut ws, sender).await;
    ws
}

/// Waits for the next event sent by `sender` (its own ack), skipping pings.
async fn next_event(ws: &mut Socket, sender: &str) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let event: Value = serde_json::from_str(&text).expect("JSON frames");
                if event["sender"] == sender {
                    return event;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("the connection ended: {other:?}"),
        }
    }
}

async fn talk(ws: &mut Socket, room_id: &str, sender: &str) {
    let frame = json!({"type": "TALK", "roomId": room_id, "sender": sender, "message": "x"});
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("TALK");
}

async fn fill(base: &str, room_id: &str, events: usize) {
    let mut ws = member(base, room_id, "filler").await;
    let (mut sent, mut acked) = (0, 0);
    while acked < events {
        while sent < events && sent - acked < FILL_WINDOW {
            talk(&mut ws, room_id, "filler").await;
            sent += 1;
        }
        next_event(&mut ws, "filler").await;
        acked += 1;
    }
}

/// Round trips of one TALK at a time until `until`.
async fn probe(ws: &mut Socket, room_id: &str, until: Instant) -> Vec<Duration> {
    let mut round_trips = Vec::new();
    while Instant::now() < until {
        let sent = Instant::now();
        talk(ws, room_id, "probe").await;
        next_event(ws, "probe").await;
        round_trips.push(sent.elapsed());
    }
    round_trips
}

fn report(label: &str, mut round_trips: Vec<Duration>) {
    round_trips.sort();
    let at = |q: f64| round_trips[((round_trips.len() - 1) as f64 * q) as usize];
    println!(
        "{label}: {} TALKs, round trip p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        round_trips.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

#[tokio::main]
async fn main() {
    let (base, events) = options();
    let http = common::http_client();
    let big = create_room(&http, &base, "big").await;
    let started = Instant::now();
    fill(&base, &big, events).await;
    println!(
        "filled a room with {events} TALKs in {:.1?}",
        started.elapsed()
    );

    let other = create_room(&http, &base, "other").await;
    let mut ws = member(&base, &other, "probe").await;
    let before = probe(&mut ws, &other, Instant::now() + BEFORE).await;
    let delete = {
        let (http, url) = (http.clone(), format!("{base}/api/rooms/{big}"));
        tokio::spawn(async move {
            let started = Instant::now();
            let status = http.delete(url).send().await.expect("DELETE").status();
            (status, started.elapsed())
        })
    };
    let after = probe(&mut ws, &other, Instant::now() + AFTER).await;
    let (status, took) = delete.await.expect("the DELETE task");

    println!("DELETE answered {status} in {took:.2?}");
    report("before the DELETE", before);
    report("from the DELETE on", after);
}
