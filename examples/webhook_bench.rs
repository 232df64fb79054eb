//! Webhook benchmark: publishes TALKs over REST into several rooms while a webhook sends them
//! to a receiver in this process, and prints figures (one JSON object); asserts nothing.
//! Run the server in identity mode (HS256 secret given here too) with CHAT_RATE_LIMIT=off and
//! CHAT_WEBHOOK_ALLOW_PRIVATE=true. `scripts/bench-webhooks` runs its scenarios.
//!
//!     cargo run --release --example webhook_bench -- --base http://127.0.0.1:8080 \
//!         --secret "$CHAT_JWT_SECRET" --rooms 10 --events 5000 --receiver ok
//!
//! `--receiver ok` answers 204 to every delivery: how fast events reach it (from each
//! publish's answer to its delivery), and whether any was missing, repeated or out of order in
//! its room. `--receiver failing` answers 500 to every delivery and `--receiver none` creates
//! no webhook: what a webhook that fails forever costs the chat's own publishing, against
//! none at all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Receiver {
    Ok,
    Failing,
    None,
}

struct Options {
    base: String,
    secret: String,
    rooms: usize,
    events: usize,
    publishers: usize,
    receiver: Receiver,
}

/// What the receiver saw: per room, each delivered seq in arrival order, and when each
/// message id arrived.
#[derive(Default)]
struct Seen {
    seqs: HashMap<String, Vec<u64>>,
    arrived: HashMap<String, Instant>,
    attempts: u64,
}

/// A TALK published: its room and id, when its answer came, and how long that took.
struct Published {
    room: String,
    id: String,
    answered: Instant,
    ms: f64,
}

fn options() -> Options {
    let mut o = Options {
        base: "http://127.0.0.1:8080".into(),
        secret: String::new(),
        rooms: 10,
        events: 5000,
        publishers: 8,
        receiver: Receiver::Ok,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let number = || value.parse::<usize>().expect("a number");
        match flag.as_str() {
            "--base" => o.base = value.clone(),
            "--secret" => o.secret = value.clone(),
            "--rooms" => o.rooms = number(),
            "--events" => o.events = number(),
            "--publishers" => o.publishers = number(),
            "--receiver" => {
                o.receiver = match value.as_str() {
                    "ok" => Receiver::Ok,
                    "failing" => Receiver::Failing,
                    "none" => Receiver::None,
                    other => panic!("--receiver is ok, failing or none, not {other}"),
                }
            }
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn token(secret: &str, name: &str, roles: &[&str]) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 3600;
    let claims = json!({"sub": name, "name": name, "exp": exp, "roles": roles});
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("a token")
}

/// Starts the receiver; its port.
fn receive(seen: Arc<Mutex<Seen>>, failing: bool) -> u16 {
    let data = web::Data::from(seen);
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).default_service(web::to(
            move |body: web::Bytes, seen: web::Data<Mutex<Seen>>| async move {
                let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let mut seen = seen.lock().expect("seen");
                seen.attempts += 1;
                if failing {
                    return HttpResponse::InternalServerError().finish();
                }
                let room = event["roomId"].as_str().unwrap_or_default().to_owned();
                let id = event["messageId"].as_str().unwrap_or_default().to_owned();
                seen.seqs
                    .entry(room)
                    .or_default()
                    .push(event["seq"].as_u64().unwrap_or(0));
                seen.arrived.entry(id).or_insert_with(Instant::now);
                HttpResponse::NoContent().finish()
            },
        ))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("the receiver binds");
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    port
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * p).round() as usize],
    }
}

/// In-room order problems: (missing, repeated, reordered), against seqs 1..=expected.
fn order(seqs: &[u64], expected: u64) -> (u64, u64, u64) {
    let (mut repeated, mut reordered, mut last) = (0, 0, 0);
    for &seq in seqs {
        match seq.cmp(&last) {
            std::cmp::Ordering::Greater if seq == last + 1 => last = seq,
            std::cmp::Ordering::Greater => {
                reordered += 1;
                last = seq;
            }
            _ => repeated += 1,
        }
    }
    let distinct = seqs.iter().collect::<std::collections::HashSet<_>>().len() as u64;
    (expected.saturating_sub(distinct), repeated, reordered)
}

async fn publish_all(o: &Options, rooms: &[String], http: &reqwest::Client) -> Vec<Published> {
    let alice = token(&o.secret, "alice", &[]);
    let per = o.events / o.publishers;
    let tasks: Vec<_> = (0..o.publishers)
        .map(|p| {
            let (http, base, alice) = (http.clone(), o.base.clone(), alice.clone());
            // Each publisher keeps to its own rooms, so a room's seqs follow its publishes.
            let mine: Vec<String> = rooms
                .iter()
                .skip(p)
                .step_by(o.publishers)
                .cloned()
                .collect();
            tokio::spawn(async move {
                let mut done = Vec::with_capacity(per);
                for n in 0..per {
                    let room = &mine[n % mine.len().max(1)];
                    let started = Instant::now();
                    let event: Value = http
                        .post(format!("{base}/api/rooms/{room}/messages"))
                        .bearer_auth(&alice)
                        .json(&json!({"message": format!("m{n}")}))
                        .send()
                        .await
                        .expect("publish")
                        .json()
                        .await
                        .expect("an Event");
                    let id = event["messageId"].as_str().expect("messageId").to_owned();
                    done.push(Published {
                        room: room.clone(),
                        id,
                        answered: Instant::now(),
                        ms: started.elapsed().as_secs_f64() * 1e3,
                    });
                }
                done
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a publisher"));
    }
    all
}

#[tokio::main]
async fn main() {
    let o = options();
    assert!(o.rooms >= o.publishers, "at least one room per publisher");
    chat::webhooks::install_tls_provider();
    let http = reqwest::Client::new();
    let admin = token(&o.secret, "bench-admin", &["admin"]);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let port = receive(seen.clone(), o.receiver == Receiver::Failing);
    let mut rooms = Vec::new();
    for n in 0..o.rooms {
        let room: Value = http
            .post(format!("{}/api/rooms", o.base))
            .bearer_auth(&admin)
            .json(&json!({"name": format!("bench {n}")}))
            .send()
            .await
            .expect("POST /api/rooms")
            .json()
            .await
            .expect("a Room");
        rooms.push(room["roomId"].as_str().expect("roomId").to_owned());
    }
    if o.receiver != Receiver::None {
        let hook = http
            .post(format!("{}/api/webhooks", o.base))
            .bearer_auth(&admin)
            .json(&json!({"url": format!("http://127.0.0.1:{port}/hook"), "rooms": rooms}))
            .send()
            .await
            .expect("POST /api/webhooks");
        assert_eq!(hook.status(), 201, "the webhook is created");
    }

    let started = Instant::now();
    let published = publish_all(&o, &rooms, &http).await;
    let publish_seconds = started.elapsed().as_secs_f64();
    let mut publish_ms: Vec<f64> = published.iter().map(|p| p.ms).collect();
    publish_ms.sort_by(f64::total_cmp);

    let mut report = json!({
        "receiver": match o.receiver { Receiver::Ok => "ok", Receiver::Failing => "failing", Receiver::None => "none" },
        "rooms": o.rooms,
        "events": published.len(),
        "published_per_s": (published.len() as f64 / publish_seconds).round(),
        "publish_p50_ms": percentile(&publish_ms, 0.5),
        "publish_p99_ms": percentile(&publish_ms, 0.99),
    });
    if o.receiver == Receiver::Ok {
        let deadline = Instant::now() + Duration::from_secs(120);
        while seen.lock().expect("seen").arrived.len() < published.len()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delivered_seconds = started.elapsed().as_secs_f64();
        let seen = seen.lock().expect("seen");
        let mut lag_ms: Vec<f64> = published
            .iter()
            .filter_map(|p| {
                let arrived = seen.arrived.get(&p.id)?;
                Some(arrived.saturating_duration_since(p.answered).as_secs_f64() * 1e3)
            })
            .collect();
        lag_ms.sort_by(f64::total_cmp);
        let (mut missing, mut repeated, mut reordered) = (0, 0, 0);
        for room in &rooms {
            let expected = published.iter().filter(|p| p.room == *room).count() as u64;
            let seqs = seen.seqs.get(room).cloned().unwrap_or_default();
            let (m, r, o) = order(&seqs, expected);
            (missing, repeated, reordered) = (missing + m, repeated + r, reordered + o);
        }
        report["delivered_per_s"] = json!((seen.arrived.len() as f64 / delivered_seconds).round());
        report["delivery_lag_p50_ms"] = json!(percentile(&lag_ms, 0.5));
        report["delivery_lag_p99_ms"] = json!(percentile(&lag_ms, 0.99));
        report["missing"] = json!(missing);
        report["repeated"] = json!(repeated);
        report["reordered"] = json!(reordered);
    } else {
        report["attempts"] = json!(seen.lock().expect("seen").attempts);
    }
    println!("{report}");
}
