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

/// Every event of a room in storage, read through the API page by page.
async fn whole_history(base: &str, room_id: &str) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let url = format!("{base}/api/rooms/{room_id}/messages?afterSeq={after}&limit=500");
        let page: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        let items = page["items"].as_array().unwrap().clone();
        let Some(last) = items.last() else {
            return events;
        };
        after = last["seq"].as_u64().unwrap();
        events.extend(items);
    }
}

/// One talker of the burst: enters (and says so on `entered`), pipelines TALKs, and keeps the
/// acknowledgements (its own copies, with their seqs) it got before the process died; returns
/// them and the last seq it saw.
async fn talk_until_killed(
    url: String,
    room_id: String,
    name: String,
    [entered, acknowledged]: [tokio::sync::mpsc::UnboundedSender<()>; 2],
) -> (Vec<(String, u64)>, u64) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let enter = serde_json::json!({"type": "ENTER", "roomId": room_id, "sender": name});
    ws.send(Message::text(enter.to_string())).await.unwrap();
    let _ = entered.send(());
    let (mut sink, mut stream) = ws.split();
    let (room, sender) = (room_id.clone(), name.clone());
    tokio::spawn(async move {
        for i in 0..2000 {
            let talk = serde_json::json!({"type": "TALK", "roomId": room, "sender": sender,
                "message": format!("m{i}"), "clientMsgId": format!("{sender}-{i}")});
            if sink.send(Message::text(talk.to_string())).await.is_err() {
                return;
            }
        }
    });
    let mut acks = Vec::new();
    let mut last_seq = 0;
    while let Some(Ok(frame)) = stream.next().await {
        let Message::Text(text) = frame else { continue };
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        let Some(seq) = event["seq"].as_u64() else {
            continue;
        };
        assert!(
            seq > last_seq,
            "seqs arrive in order: {seq} after {last_seq}"
        );
        last_seq = seq;
        if event["type"] == "TALK" && event["sender"] == name.as_str() {
            acks.push((event["clientMsgId"].as_str().unwrap().to_owned(), seq));
            let _ = acknowledged.send(());
        }
    }
    (acks, last_seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_loses_no_acknowledged_event_reuses_no_seq_and_every_client_resumes() {
    killed_mid_burst("fsync").await;
}

/// With commits handed to the operating system rather than flushed, the process being killed
/// still loses nothing acknowledged (only the machine going down could).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_with_os_durability_loses_no_acknowledged_event_either() {
    killed_mid_burst("os").await;
}

/// Four talkers pipeline TALKs; the process is killed with `durability` after 200
/// acknowledgements; a new one on the same storage holds every acknowledged event at its seq,
/// seqs without gap or reuse, and each talker resumes from its last seq.
async fn killed_mid_burst(durability: &str) {
    use crate::helpers::Data;
    use crate::process::ChatProcess;

    let data = Data::new().await;
    let url = data.url();
    let mut first = ChatProcess::start(&[("DATABASE_URL", &url), ("CHAT_DURABILITY", durability)]);
    // Said before "listening", which start waited for.
    let said = format!("\"durability\":\"{durability}\"");
    assert!(first.log().contains(&said), "{}", first.log());
    let room_id = first.create_room(None).await;
    let ws_url = format!("ws://127.0.0.1:{}/ws/chat", first.port);
    let (acked, mut acks_seen) = tokio::sync::mpsc::unbounded_channel();
    let (entered, mut enters_seen) = tokio::sync::mpsc::unbounded_channel();
    let talkers: Vec<_> = (0..4)
        .map(|t| {
            let talker = talk_until_killed(
                ws_url.clone(),
                room_id.clone(),
                format!("t{t}"),
                [entered.clone(), acked.clone()],
            );
            tokio::spawn(talker)
        })
        .collect();
    // Every talker is in the burst before the kill (on a loaded machine the first ones could
    // otherwise bring the 200 before the last had even connected).
    for _ in 0..4 {
        enters_seen.recv().await.expect("every talker enters");
    }
    for _ in 0..200 {
        acks_seen.recv().await.expect("acknowledgements arrive");
    }

    first.kill();
    let mut seen = Vec::new();
    for talker in talkers {
        seen.push(talker.await.unwrap());
    }
    let second = ChatProcess::start(&[("DATABASE_URL", &url)]);
    let base = second.url("");

    let history = whole_history(&base, &room_id).await;
    let seqs: Vec<u64> = history.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "seqs are 1, 2, 3... with no gap or reuse"
    );
    let stored: std::collections::HashMap<&str, u64> = history
        .iter()
        .filter_map(|e| Some((e["clientMsgId"].as_str()?, e["seq"].as_u64()?)))
        .collect();
    let mut acknowledged = 0;
    for (acks, _) in &seen {
        for (id, seq) in acks {
            assert_eq!(
                stored.get(id.as_str()),
                Some(seq),
                "acknowledged {id} is stored at its seq"
            );
            acknowledged += 1;
        }
    }
    assert!(acknowledged >= 200);
    let last = *seqs.last().unwrap();

    for (t, (_, last_seen)) in seen.iter().enumerate() {
        let mut client = crate::helpers::connect(second.port).await;
        // Its id tells the new ENTER from the first one, which the replay may bring back (a
        // talker killed before its ENTER's echo arrived resumes from 0).
        let resumed = format!("resume-t{t}");
        client
            .send_json(serde_json::json!({"type": "ENTER", "roomId": room_id,
                "sender": format!("t{t}"), "lastSeq": last_seen, "clientMsgId": resumed}))
            .await;
        let mut expected = last_seen + 1;
        loop {
            let event = client.next_json().await;
            assert_eq!(
                event["seq"], expected,
                "resume goes on from {last_seen} with nothing missing"
            );
            if event["type"] == "ENTER" && event["clientMsgId"] == resumed.as_str() {
                assert!(
                    expected > last,
                    "the new ENTER takes a seq never used: {event}"
                );
                break;
            }
            expected += 1;
        }
    }
}
