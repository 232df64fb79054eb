//! The heart-beats that take tens of seconds by contract, run once: STOMP's both ways (the
//! server's floor is 10 s) and SockJS's `h` every 25 s.

use std::time::Duration;

use tokio::time::Instant;

use crate::helpers::spawn_app_with;
use crate::suite::sockjs::{Sent, SockJs};
use crate::suite::stomp_client::{Next, open};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_heart_beats_go_out_every_10_s_and_a_silent_client_is_dropped_in_20_to_30_s() {
    // No WebSocket pings, whose pongs would count as signs of life.
    let app = spawn_app_with(|s| {
        s.ping_interval_ms = 600_000;
        s.client_timeout_ms = 1_200_000;
    })
    .await;
    let mut client = open(app.port, "/ws/stomp", "v12.stomp", &[]).await;
    client
        .send_frame(
            "CONNECT",
            &[("accept-version", "1.2"), ("heart-beat", "10000,10000")],
            "",
        )
        .await;
    client.expect("CONNECTED").await;
    let connected = Instant::now();

    // For 30 s the client sends an EOL every 7 s: it stays, and hears the server's EOLs.
    let mut beats = Vec::new();
    let mut last_sent = Instant::now();
    while connected.elapsed() < Duration::from_secs(30) {
        match client.try_next(Duration::from_secs(7)).await {
            Some(Next::HeartBeat) => beats.push(connected.elapsed()),
            None => {}
            other => panic!("expected heart-beats only, got {other:?}"),
        }
        if last_sent.elapsed() >= Duration::from_secs(7) {
            client.send("\n").await;
            last_sent = Instant::now();
        }
    }
    assert!(beats.len() >= 2, "server heart-beats in 30 s: {beats:?}");
    assert!(
        beats
            .windows(2)
            .all(|w| w[1] - w[0] <= Duration::from_millis(10_500)),
        "at least every 10 s: {beats:?}"
    );

    // Then it falls silent.
    let silent = last_sent;
    let code = loop {
        match client.try_next(Duration::from_secs(40)).await {
            Some(Next::HeartBeat) => continue,
            Some(Next::Closed(code)) => break code,
            other => panic!("expected heart-beats then the close, got {other:?}"),
        }
    };
    let after = silent.elapsed();
    assert_eq!(code, Some(1008));
    assert!(
        after >= Duration::from_secs(20) && after <= Duration::from_secs(31),
        "dropped {after:?} after its last heart-beat"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockjs_sends_h_every_25_s() {
    let app = spawn_app_with(|_| {}).await;
    let mut client = SockJs::open(app.port, "/ws/chat").await;
    let opened = Instant::now();

    let sent = client.next_within(Duration::from_secs(30)).await;
    let first = opened.elapsed();

    assert_eq!(sent, Sent::HeartBeat);
    assert!(
        first >= Duration::from_secs(24) && first <= Duration::from_secs(27),
        "h after {first:?}"
    );
}
