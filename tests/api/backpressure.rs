//! A saturated storage writer slows down what sessions read, never what they deliver.

use crate::helpers::spawn_app_with;

const TALKS_EACH: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_waiting_for_the_writer_keeps_delivering_its_events() {
    let app = spawn_app_with(|s| {
        s.write_queue = 2;
        s.session_queue = 16;
    })
    .await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;

    // Both pipeline more TALKs than the writer can queue while it waits for the lock; once it
    // resumes, each batch fans out while both sessions still have TALKs waiting to be queued.
    let lock = app.hold_write_lock().await;
    for i in 0..TALKS_EACH {
        alice.talk(&room_id, "alice", &format!("a{i}")).await;
        bob.talk(&room_id, "bob", &format!("b{i}")).await;
    }
    app.wait_for_scrape("the writer's queue filled up", |scrape| {
        let appends = |metric: &str| scrape.value(&format!("{metric}{{command=\"append\"}}"));
        appends("chat_writer_queued_total") - appends("chat_writer_taken_total") >= 2.0
    })
    .await;
    lock.release().await;

    for client in [&mut alice, &mut bob] {
        let mut seqs = Vec::new();
        while seqs.len() < 2 * TALKS_EACH {
            seqs.push(client.next_of_type("TALK").await["seq"].as_u64().unwrap());
        }
        assert_eq!(seqs, (3..3 + 2 * TALKS_EACH as u64).collect::<Vec<_>>());
    }
    assert_eq!(
        app.room(&room_id).await["memberCount"],
        2,
        "nobody was closed as slow"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_hold_no_room_in_the_writers_queue() {
    let app = spawn_app_with(|s| s.write_queue = 4).await;
    let room_id = app.create_room("general").await;
    let mut idle = Vec::new();
    for i in 0..10 {
        let mut client = app.connect().await;
        client.join(&room_id, &format!("idle{i}")).await;
        idle.push(client);
    }

    let mut talker = app.connect().await;
    talker.join(&room_id, "talker").await;
    talker.talk(&room_id, "talker", "anyone?").await;

    assert_eq!(talker.next_of_type("TALK").await["message"], "anyone?");
}
