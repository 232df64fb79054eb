use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_rooms_and_history_and_seq_continues() {
    let app = spawn_app().await;
    let room_id = app.create_room("durable").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    alice.talk_with_id(&room_id, "alice", "before", "c-1").await;
    alice.next_of_type("TALK").await;
    let before = app.history(&room_id, "").await;

    let app = app.restart().await;

    let after_restart = app.history(&room_id, "").await;
    assert_eq!(after_restart[..2], before[..], "history survived");
    assert_eq!(
        after_restart[2]["type"], "LEAVE",
        "the shutdown's LEAVE was stored"
    );
    assert_eq!(after_restart[2]["seq"], 3);
    let room = app.room(&room_id).await;
    assert_eq!(room["name"], "durable");
    assert_eq!(room["lastSeq"], 3);
    assert_eq!(room["memberCount"], 0);
    let mut alice = app.connect().await;
    let enter = alice.join(&room_id, "alice").await;
    assert_eq!(enter["seq"], 4, "seq continues after a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_closes_sessions_with_1001() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;

    let stopping = tokio::spawn(app.stop());

    assert_eq!(alice.expect_close().await, 1001);
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_across_a_restart_with_no_loss_and_no_duplicate() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;
    alice.talk(&room_id, "alice", "before the restart").await;
    let seen = bob.next_of_type("TALK").await["seq"].as_u64().unwrap();

    let app = app.restart().await;
    drop((alice, bob));
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    alice.talk(&room_id, "alice", "after the restart").await;
    alice.next_of_type("TALK").await;
    let mut bob = app.connect().await;
    bob.enter_after(&room_id, "bob", seen).await;

    let mut replayed = Vec::new();
    loop {
        let event = bob.next_json().await;
        replayed.push((
            event["type"].as_str().unwrap().to_owned(),
            event["seq"].as_u64().unwrap(),
        ));
        if event["sender"] == "bob" && event["type"] == "ENTER" {
            break;
        }
    }
    let seqs: Vec<u64> = replayed.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(
        seqs,
        ((seen + 1)..=(seen + seqs.len() as u64)).collect::<Vec<_>>()
    );
    let kinds: Vec<&str> = replayed.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["LEAVE", "LEAVE", "ENTER", "TALK", "ENTER"],
        "both shutdown LEAVEs, alice back, her TALK, bob back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_still_being_stored_at_shutdown_is_stored_once() {
    let app = spawn_app().await;
    let (room_id, _alice, mut bob) = app.alice_and_bob_in_a_room().await;
    let lock = app.hold_write_lock().await;
    bob.leave(&room_id, "bob").await;
    app.wait_for_writer_to_take(3).await;

    let readyz = app.url("/readyz");
    let restarting = tokio::spawn(app.restart());
    let deadline = tokio::time::Instant::now() + crate::helpers::WAIT;
    while reqwest::get(&readyz).await.is_ok_and(|r| r.status() == 200) {
        assert!(tokio::time::Instant::now() < deadline, "never shut down");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    lock.release().await;
    let app = restarting.await.unwrap();

    let history = app.history(&room_id, "").await;
    let leavers: Vec<&str> = history
        .iter()
        .filter(|e| e["type"] == "LEAVE")
        .map(|e| e["sender"].as_str().unwrap())
        .collect();
    assert_eq!(leavers.len(), 2, "{leavers:?}");
    assert!(
        leavers.contains(&"alice") && leavers.contains(&"bob"),
        "{leavers:?}"
    );
}
