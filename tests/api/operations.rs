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

    let response = app.get("/metrics").await;

    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for line in [
        "chat_connections 1",
        "chat_rooms_active 1",
        "chat_frames_in_total{type=\"ENTER\"} 1",
        "chat_events_stored_total{type=\"ENTER\"} 1",
        "chat_events_out_total 1",
        "chat_errors_total{transport=\"ws\",code=\"INVALID_JSON\"} 1",
        "chat_errors_total{transport=\"http\",code=\"INVALID_REQUEST\"} 1",
        "chat_fanout_seconds_count 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
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

    for (i, client) in clients.iter_mut().enumerate() {
        for j in 0..10 {
            client
                .talk(&room_id, &format!("c{i}"), &format!("m{j}"))
                .await;
        }
    }
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
        batches < events,
        "200 TALKs took {batches} transactions: no group commit"
    );
}
