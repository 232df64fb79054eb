//! What reading a stored event back from its JSON costs: every instance does it for each
//! event another instance stored (the broker carries events as the contract's JSON, in an
//! envelope naming the instance). Prints nanoseconds per event for a TALK and a MODERATION,
//! alone and in their envelope, the median of five rounds.
//!
//!     cargo run --release --example decode_bench

use std::hint::black_box;
use std::time::Instant;

use chat::cluster::wire::{Body, Envelope};
use chat::domain::{Event, InstanceId};
use serde::de::DeserializeOwned;

const EVENTS: u32 = 200_000;

const TALK: &str = r#"{"type":"TALK","roomId":"71f4d055-e937-4086-b997-d24a40d8764f","seq":4217,"messageId":"0b5c8f0e-8d7e-4b8e-9a55-3b8f3c2a1d10","sender":"alice","message":"see you at the station at nine, the train is at half past","sentAt":"2026-12-07T00:20:00.123Z","clientMsgId":"alice-4217"}"#;

const MODERATION: &str = r#"{"type":"MODERATION","roomId":"71f4d055-e937-4086-b997-d24a40d8764f","seq":4218,"messageId":"6a1e3f2b-0c4d-4e5f-8a9b-1c2d3e4f5a6b","sender":"olga","sentAt":"2026-12-07T00:20:01.456Z","action":"ban","target":"mallory","by":"olga","until":"2026-12-08T00:20:01.456Z","reason":"spam"}"#;

fn main() {
    for (name, json) in [("TALK", TALK), ("MODERATION", MODERATION)] {
        let event: Event = serde_json::from_str(json).expect("the sample is an event");
        assert_eq!(
            serde_json::to_string(&event).expect("it writes"),
            json,
            "it reads back whole"
        );
        let enveloped = Envelope::new(InstanceId::random(), Body::Event(event));
        let enveloped = serde_json::to_string(&enveloped).expect("an envelope writes");
        println!(
            "{name}: {:.0} ns per event to read, {:.0} ns in its envelope",
            median::<Event>(json),
            median::<Envelope>(&enveloped)
        );
    }
}

fn median<T: DeserializeOwned>(json: &str) -> f64 {
    let mut rounds: Vec<f64> = (0..5).map(|_| nanoseconds_per_read::<T>(json)).collect();
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

fn nanoseconds_per_read<T: DeserializeOwned>(json: &str) -> f64 {
    let started = Instant::now();
    for _ in 0..EVENTS {
        let read: T = serde_json::from_str(black_box(json)).expect("it reads");
        black_box(read);
    }
    started.elapsed().as_nanos() as f64 / f64::from(EVENTS)
}
