use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_and_readiness_answer_200() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_connections_events_and_errors() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    alice.send_text("nope").await;
    alice.next_error("INVALID_JSON").await;
    app.get("/api/rooms/nope").await;
    let expected = [
        "chat_connections 1",
        "chat_rooms_active 1",
        "chat_frames_in_total{type=\"ENTER\"} 1",
        "chat_events_stored_total{type=\"ENTER\"} 1",
        "chat_events_out_total 1",
        "chat_errors_total{transport=\"ws\",code=\"INVALID_JSON\"} 1",
        "chat_errors_total{transport=\"http\",code=\"INVALID_REQUEST\"} 1",
        "chat_fanout_seconds_count 1",
    ];

    // The writer records fan-out time after queueing the event, so a client may see the event
    // a moment before its histogram counts it.
    app.wait_for_metrics(&expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_ended_sessions() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    let bob = app.connect().await;
    app.wait_for_metrics(&["chat_connections 2", "chat_connections_closed_total 0"])
        .await;

    drop(bob);

    app.wait_for_metrics(&["chat_connections 1", "chat_connections_closed_total 1"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_time_every_stage_from_frame_to_socket() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;
    app.wait_for_metrics(&["chat_events_out_total 3"]).await;
    let before = app.scrape().await;

    alice.talk(&room_id, "alice", "hello").await;
    alice.next_of_type("TALK").await;
    bob.next_of_type("TALK").await;

    app.wait_for_scrape("a count in each stage for the TALK", |after| {
        [
            ("queued", 1.0),
            ("committed", 1.0),
            ("fanned_out", 1.0),
            ("written", 2.0),
        ]
        .iter()
        .all(|(stage, delta)| {
            let series = format!("chat_stage_seconds_count{{stage=\"{stage}\"}}");
            after.value(&series) - before.value(&series) >= *delta
        })
    })
    .await;
}

/// The sum and count of a histogram in the metrics text.
fn histogram(text: &str, name: &str) -> (f64, f64) {
    let value = |suffix: &str| {
        let prefix = format!("{name}_{suffix} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name}_{suffix} in\n{text}"))
    };
    (value("sum"), value("count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_talks_share_transactions() {
    let app = spawn_app().await;
    let room_id = app.create_room("busy").await;
    let mut clients = Vec::new();
    for i in 0..20 {
        let mut client = app.connect().await;
        client.enter(&room_id, &format!("c{i}")).await;
        clients.push(client);
    }
    while clients[0].next_json().await["seq"] != 20 {}
    let before = histogram(
        &app.get("/metrics").await.text().await.unwrap(),
        "chat_store_batch_size",
    );

    // While the writer waits for the lock, all 200 TALKs queue up behind it.
    let lock = app.hold_write_lock().await;
    for (i, client) in clients.iter_mut().enumerate() {
        for j in 0..10 {
            client
                .talk(&room_id, &format!("c{i}"), &format!("m{j}"))
                .await;
        }
    }
    app.wait_for_writer_queue(20 + 200).await;
    lock.release().await;
    let last = 20 + 200;
    let reader = &mut clients[0];
    while reader.next_json().await["seq"] != last {}

    let after = histogram(
        &app.get("/metrics").await.text().await.unwrap(),
        "chat_store_batch_size",
    );
    let (events, batches) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(events, 200.0);
    assert!(
        batches <= 3.0,
        "200 TALKs queued together took {batches} transactions: no group commit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_while_draining() {
    let app = crate::helpers::spawn_app_with(|s| s.shutdown_timeout_secs = 3).await;
    let room_id = app.create_room("general").await;
    let mut stalled = app.connect_small_buffer().await;
    stalled.join(&room_id, "stalled").await;
    let mut talker = app.connect().await;
    talker.join(&room_id, "talker").await;
    // About 6 MB for a member that reads nothing: its socket fills up, so its close frame
    // cannot be written and the drain lasts until its budget runs out.
    let text = "x".repeat(4000);
    for _ in 0..1500 / 8 {
        talker.talk_and_await(&room_id, "talker", &text, 8).await;
    }
    assert_eq!(app.get("/readyz").await.status(), 200);
    let http = app.http.clone();
    let readyz = app.url("/readyz");

    let stopping = tokio::spawn(app.stop());

    let deadline = tokio::time::Instant::now() + crate::helpers::WAIT;
    let response = loop {
        let response = http
            .get(&readyz)
            .send()
            .await
            .expect("an open connection is still served");
        if response.status() != 200 {
            break response;
        }
        assert!(tokio::time::Instant::now() < deadline, "never drained");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    crate::helpers::assert_problem(response, 503, "UNAVAILABLE").await;
    stopping.await.unwrap();
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_while_the_writer_cannot_store() {
    let app = crate::helpers::spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;

    // The writer waits for the lock with alice's TALK; its readiness ping queues behind it
    // (the session queues a TALK with the writer as it counts it).
    let lock = app.hold_write_lock().await;
    alice.talk(&room_id, "alice", "stuck").await;
    app.wait_for_metrics(&["chat_frames_in_total{type=\"TALK\"} 1"])
        .await;
    let stuck = app.get("/readyz").await;
    lock.release().await;

    crate::helpers::assert_problem(stuck, 503, "UNAVAILABLE").await;
    alice.next_of_type("TALK").await;
    assert_eq!(app.get("/readyz").await.status(), 200);
}
