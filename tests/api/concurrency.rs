use std::collections::HashMap;

use futures_util::future::join_all;

use crate::helpers::{WsClient, spawn_app};

const ROOMS: usize = 8;
const MEMBERS: usize = 5;
const TALKS_EACH: usize = 25;

/// One TALK as a member saw it: (seq, sender, clientMsgId).
type Seen = (u64, String, String);

/// Sends this member's TALKs all at once, then reads until it has seen every TALK of the room.
async fn talk_and_collect(
    mut client: WsClient,
    room_id: String,
    name: String,
    later: usize,
) -> Vec<Seen> {
    for i in 0..TALKS_EACH {
        client
            .talk_with_id(&room_id, &name, "hi", &format!("{name}-{i}"))
            .await;
    }
    for _ in 0..later {
        client.next_of_type("ENTER").await;
    }
    let mut seen = Vec::new();
    while seen.len() < MEMBERS * TALKS_EACH {
        let event = client.next_of_type("TALK").await;
        assert_eq!(event["roomId"], room_id, "nothing from another room");
        seen.push((
            event["seq"].as_u64().unwrap(),
            event["sender"].as_str().unwrap().to_owned(),
            event["clientMsgId"].as_str().unwrap().to_owned(),
        ));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_in_many_rooms_each_get_their_rooms_events_exactly_once_in_order() {
    let app = spawn_app().await;
    let mut members = Vec::new();
    for r in 0..ROOMS {
        let room_id = app.create_room(&format!("room {r}")).await;
        for m in 0..MEMBERS {
            let mut client = app.connect().await;
            let name = format!("r{r}m{m}");
            client.join(&room_id, &name).await;
            members.push((room_id.clone(), client, name, MEMBERS - 1 - m));
        }
    }

    let mut rooms = Vec::new();
    let mut handles = Vec::new();
    for (room_id, client, name, later) in members {
        rooms.push(room_id.clone());
        handles.push(tokio::spawn(talk_and_collect(client, room_id, name, later)));
    }
    let results = join_all(handles).await;

    let mut by_room: HashMap<String, Vec<Vec<Seen>>> = HashMap::new();
    for (room_id, result) in rooms.into_iter().zip(results) {
        by_room
            .entry(room_id)
            .or_default()
            .push(result.expect("member task"));
    }
    for (room_id, views) in by_room {
        let first = &views[0];
        let seqs: Vec<u64> = first.iter().map(|(seq, ..)| *seq).collect();
        let expected: Vec<u64> =
            ((MEMBERS as u64 + 1)..=(MEMBERS * (TALKS_EACH + 1)) as u64).collect();
        assert_eq!(
            seqs, expected,
            "room {room_id}: gap-free, in order, exactly once"
        );
        for view in &views {
            assert_eq!(
                view, first,
                "room {room_id}: every member saw the same events"
            );
        }
        for m in 0..MEMBERS {
            let ids: Vec<&str> = first
                .iter()
                .filter(|(_, sender, _)| sender.ends_with(&format!("m{m}")))
                .map(|(.., id)| id.as_str())
                .collect();
            let sent: Vec<String> = (0..TALKS_EACH)
                .map(|i| format!("{}-{i}", first_sender(first, m)))
                .collect();
            assert_eq!(
                ids, sent,
                "room {room_id}: one sender's TALKs keep their order"
            );
        }
    }
}

fn first_sender(seen: &[Seen], member: usize) -> String {
    seen.iter()
        .map(|(_, sender, _)| sender.clone())
        .find(|sender| sender.ends_with(&format!("m{member}")))
        .expect("every member talked")
}
