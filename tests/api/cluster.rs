//! Several instances (PROTOCOL.md, "Several instances"): two real processes over one fresh
//! PostgreSQL database and a Redis of the test's own, clients on both. Every member on every
//! instance sees one gap-free order, presence adds up, a killed instance's members leave, and
//! Redis or PostgreSQL going away loses nothing.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::faults::{
    Proxy, RedisCluster, RedisServer, SentinelSet, postgres_server, through, tls_fixture,
};
use crate::helpers::{WAIT, WsClient, connect};
use sqlx::Connection;

use crate::process::ChatProcess;
use crate::suite::stomp_client::StompClient;
use crate::test_database::TestDatabase;

/// Heartbeats every 200 ms; 1 s of silence means death; retention looked at every 50 ms.
const FAST_LIVENESS: [(&str, &str); 3] = [
    ("CHAT_HEARTBEAT_MS", "200"),
    ("CHAT_INSTANCE_TIMEOUT_MS", "1000"),
    ("CHAT_RETENTION_CHECK_MS", "50"),
];

/// The Redis the instances share: one, or a master, its replica and Sentinels.
enum Broker {
    Single(RedisServer),
    Sentinels(SentinelSet),
    Cluster(RedisCluster),
}

impl Broker {
    fn single(&mut self) -> &mut RedisServer {
        match self {
            Self::Single(redis) => redis,
            Self::Sentinels(_) | Self::Cluster(_) => panic!("this test needs one Redis"),
        }
    }
}

struct Pair {
    a: ChatProcess,
    b: ChatProcess,
    redis: Broker,
    http: reqwest::Client,
    database: TestDatabase,
}

fn instance(database_url: &str, redis_url: &str) -> ChatProcess {
    let mut env = vec![("DATABASE_URL", database_url), ("REDIS_URL", redis_url)];
    env.extend(FAST_LIVENESS);
    ChatProcess::start(&env)
}

/// Two instances over one database and one Redis, both ready.
async fn two_instances() -> Pair {
    two_instances_via(None, None).await
}

/// Like [`two_instances`], each reaching PostgreSQL through its proxy when given.
async fn two_instances_via(a: Option<&Proxy>, b: Option<&Proxy>) -> Pair {
    let database = TestDatabase::create().await;
    let url = |proxy: Option<&Proxy>| match proxy {
        Some(proxy) => through(&database.url, proxy),
        None => database.url.clone(),
    };
    let redis = RedisServer::start();
    let (a, b, redis_url) = (url(a), url(b), redis.url());
    started(
        database,
        Broker::Single(redis),
        (&a, &redis_url),
        (&b, &redis_url),
    )
    .await
}

/// Two instances, each started with its (DATABASE_URL, REDIS_URL), both ready.
async fn started(database: TestDatabase, redis: Broker, a: (&str, &str), b: (&str, &str)) -> Pair {
    let (a, b) = (instance(a.0, a.1), instance(b.0, b.1));
    both_ready(database, redis, a, b).await
}

/// The pair of these two instances, once both are ready.
async fn both_ready(database: TestDatabase, redis: Broker, a: ChatProcess, b: ChatProcess) -> Pair {
    let pair = Pair {
        a,
        b,
        redis,
        http: crate::helpers::http_client(),
        database,
    };
    for process in [&pair.a, &pair.b] {
        pair.wait_for_readiness(process, 200).await;
    }
    pair
}

impl Pair {
    fn database_url(&self) -> String {
        self.database.url.clone()
    }

    async fn readiness(&self, process: &ChatProcess) -> u16 {
        let response = self.http.get(process.url("/readyz")).send().await;
        response.map_or(0, |r| r.status().as_u16())
    }

    async fn wait_for_readiness(&self, process: &ChatProcess, status: u16) {
        let deadline = Instant::now() + WAIT;
        while self.readiness(process).await != status {
            assert!(Instant::now() < deadline, "/readyz never answered {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get_json(&self, url: String) -> Value {
        let response = self.http.get(url).send().await.unwrap();
        response.json().await.unwrap()
    }

    async fn room(&self, on: &ChatProcess, room_id: &str) -> Value {
        self.get_json(on.url(&format!("/api/rooms/{room_id}")))
            .await
    }

    async fn history(&self, room_id: &str) -> Vec<Value> {
        let path = format!("/api/rooms/{room_id}/messages?afterSeq=0&limit=500");
        let page = self.get_json(self.b.url(&path)).await;
        page["items"].as_array().unwrap().clone()
    }

    /// A room with alice in it on instance a and then bob on b, each having read every ENTER.
    async fn alice_on_a_and_bob_on_b(&self) -> (String, WsClient, WsClient) {
        let room_id = self.a.create_room(None).await;
        let (mut alice, _) = member(&self.a, &room_id, "alice").await;
        let (bob, _) = member(&self.b, &room_id, "bob").await;
        alice.next_of_type("ENTER").await;
        (room_id, alice, bob)
    }

    /// Deletes a room through `process`.
    async fn delete_room(&self, process: &ChatProcess, room_id: &str) {
        let url = process.url(&format!("/api/rooms/{room_id}"));
        let deleted = self.http.delete(url).send().await.unwrap();
        assert_eq!(deleted.status(), 204);
    }

    /// TALKs stored by both instances so far.
    async fn talks_stored(&self) -> u64 {
        let series = "chat_events_stored_total{type=\"TALK\"}";
        let stored = metric(self, &self.a, series).await + metric(self, &self.b, series).await;
        stored as u64
    }

    /// Waits until the instances have stored at least `talks` TALKs between them.
    async fn wait_for_talks_stored(&self, talks: u64) {
        let deadline = Instant::now() + WAIT;
        while self.talks_stored().await < talks {
            assert!(Instant::now() < deadline, "{talks} TALKs were never stored");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_for_member_count(&self, room_id: &str, expected: u64) {
        let deadline = Instant::now() + WAIT;
        for process in [&self.a, &self.b] {
            while self.room(process, room_id).await["memberCount"] != expected {
                assert!(
                    Instant::now() < deadline,
                    "memberCount never became {expected}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One member's stream: every event it received after its own ENTER, as (seq, type, id).
type Stream = Vec<(u64, String, String)>;

/// Reads until `talks` TALKs have arrived, keeping every event.
async fn read_talks(client: &mut WsClient, talks: usize, within: Duration) -> Stream {
    let deadline = tokio::time::Instant::now() + within;
    let mut stream = Vec::new();
    while stream.iter().filter(|(_, kind, _)| kind == "TALK").count() < talks {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(event) = client.try_next_json(left).await else {
            panic!("only {} of {talks} TALKs arrived: {stream:?}", stream.len());
        };
        let id = event["clientMsgId"].as_str().unwrap_or_default().to_owned();
        let kind = event["type"].as_str().unwrap().to_owned();
        stream.push((event["seq"].as_u64().unwrap(), kind, id));
    }
    stream
}

fn assert_gap_free(stream: &Stream, first: u64, who: &str) {
    let seqs: Vec<u64> = stream.iter().map(|(seq, ..)| *seq).collect();
    let expected: Vec<u64> = (first..first + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "{who}: in seq order, no gap, no duplicate");
}

/// The `clientMsgId` of each frame a member gets before its room's `CLOSED`.
async fn ids_until_closed(client: &mut WsClient) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let frame = client.next_json().await;
        if frame["type"] == "CLOSED" {
            return seen;
        }
        seen.push(frame["clientMsgId"].as_str().unwrap_or_default().to_owned());
    }
}

/// Joins `name` to the room on `process`; returns the client and its ENTER's seq.
async fn member(process: &ChatProcess, room_id: &str, name: &str) -> (WsClient, u64) {
    let mut client = connect(process.port).await;
    let enter = client.join(room_id, name).await;
    (client, enter["seq"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_talks_on_two_instances_reach_every_member_in_one_gap_free_order() {
    const TALKS_EACH: usize = 30;
    let pair = two_instances().await;
    let room_id = pair.a.create_room(None).await;
    let mut members = Vec::new();
    for (i, process) in [&pair.a, &pair.b, &pair.a, &pair.b].into_iter().enumerate() {
        members.push(member(process, &room_id, &format!("m{i}")).await);
    }
    let last_enter = members.last().unwrap().1;

    let talkers = members
        .into_iter()
        .enumerate()
        .map(|(i, (mut client, enter))| {
            let room_id = room_id.clone();
            async move {
                for t in 0..TALKS_EACH {
                    client
                        .talk_with_id(&room_id, &format!("m{i}"), "hi", &format!("m{i}-{t}"))
                        .await;
                }
                let stream = read_talks(&mut client, 4 * TALKS_EACH, WAIT * 2).await;
                (enter, stream)
            }
        });
    let streams = join_all(talkers).await;

    let mut views = Vec::new();
    for (i, (enter, stream)) in streams.iter().enumerate() {
        assert_gap_free(stream, enter + 1, &format!("m{i}"));
        let talks: BTreeMap<u64, &str> = stream
            .iter()
            .filter(|(seq, kind, _)| kind == "TALK" && *seq > last_enter)
            .map(|(seq, _, id)| (*seq, id.as_str()))
            .collect();
        views.push(talks);
    }
    assert!(
        views.iter().all(|view| *view == views[0]),
        "every member saw the same order"
    );
    assert_eq!(views[0].len(), 4 * TALKS_EACH);
    let stored = pair.history(&room_id).await;
    let stored_talks = stored.iter().filter(|e| e["type"] == "TALK").count();
    assert_eq!(stored_talks, 4 * TALKS_EACH, "each TALK stored once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_count_adds_up_across_instances() {
    let pair = two_instances().await;
    let room_id = pair.a.create_room(None).await;
    let (mut alice, _) = member(&pair.a, &room_id, "alice").await;
    let (_bob, _) = member(&pair.b, &room_id, "bob").await;
    let (_carol, _) = member(&pair.b, &room_id, "carol").await;

    pair.wait_for_member_count(&room_id, 3).await;
    alice.leave(&room_id, "alice").await;
    pair.wait_for_member_count(&room_id, 2).await;
    let listed = pair.get_json(pair.a.url("/api/rooms")).await;
    assert_eq!(listed["items"][0]["memberCount"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_without_a_goodbye_has_its_members_leave_within_the_bound() {
    let mut pair = two_instances().await;
    let room_id = pair.a.create_room(None).await;
    let (mut alice, _) = member(&pair.a, &room_id, "alice").await;
    let (_bob, _) = member(&pair.b, &room_id, "bob").await;
    let (_carol, _) = member(&pair.b, &room_id, "carol").await;
    pair.wait_for_member_count(&room_id, 3).await;
    for _ in 0..2 {
        alice.next_of_type("ENTER").await;
    }

    let killed = Instant::now();
    pair.b.kill();

    let mut leavers = HashSet::new();
    while leavers.len() < 2 {
        let leave = alice.next_of_type("LEAVE").await;
        leavers.insert(leave["sender"].as_str().unwrap().to_owned());
    }
    let after = killed.elapsed();
    assert_eq!(
        leavers,
        HashSet::from(["bob".to_owned(), "carol".to_owned()])
    );
    // Timeout 1 s plus a heartbeat of 200 ms, with room for a loaded machine.
    assert!(
        after < Duration::from_secs(5),
        "the LEAVEs came {after:?} after the kill"
    );
    let room = pair.room(&pair.a, &room_id).await;
    assert_eq!(room["memberCount"], 1, "{room}");
    alice.talk(&room_id, "alice", "still here").await;
    assert_eq!(alice.next_of_type("TALK").await["message"], "still here");
}

/// Hundreds of members of one room on an instance that dies: their LEAVEs are stored and
/// fanned out a batch at a time, so a member elsewhere whose queue holds far fewer events
/// than that keeps up, gets every LEAVE, and is not closed as too slow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaves_of_a_crowd_on_a_dead_instance_never_overflow_a_member_elsewhere() {
    const CROWD: usize = 400;
    let database = TestDatabase::create().await;
    let redis = RedisServer::start();
    let small_queue = [("CHAT_SESSION_QUEUE", "64")];
    let mut env = vec![("DATABASE_URL", database.url.as_str())];
    let redis_url = redis.url();
    env.push(("REDIS_URL", redis_url.as_str()));
    env.extend(FAST_LIVENESS);
    let crowded = ChatProcess::start(&env);
    env.extend(small_queue);
    let watching = ChatProcess::start(&env);
    let mut pair = Pair {
        a: crowded,
        b: watching,
        redis: Broker::Single(redis),
        http: crate::helpers::http_client(),
        database,
    };
    for process in [&pair.a, &pair.b] {
        pair.wait_for_readiness(process, 200).await;
    }
    let room_id = pair.a.create_room(None).await;
    let (mut alice, _) = member(&pair.b, &room_id, "alice").await;
    let mut crowd = Vec::new();
    for i in 0..CROWD {
        crowd.push(member(&pair.a, &room_id, &format!("crowd-{i}")).await.0);
    }
    for _ in 0..CROWD {
        alice.next_of_type("ENTER").await;
    }

    pair.a.kill();
    let mut leavers = HashSet::new();
    while leavers.len() < CROWD {
        let leave = alice.next_of_type("LEAVE").await;
        leavers.insert(leave["sender"].as_str().unwrap().to_owned());
    }
    alice.talk(&room_id, "alice", "still here").await;
    assert_eq!(alice.next_of_type("TALK").await["message"], "still here");
    drop(crowd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_burst_loses_nothing_and_readiness_says_so_meanwhile() {
    const TALKS_EACH: usize = 60;
    let mut pair = two_instances().await;
    let room_id = pair.a.create_room(None).await;
    let (mut alice, _) = member(&pair.a, &room_id, "alice").await;
    let (bob, bob_enter) = member(&pair.b, &room_id, "bob").await;
    alice.next_of_type("ENTER").await;

    let burst = |mut client: WsClient, name: &'static str| {
        let room_id = room_id.clone();
        tokio::spawn(async move {
            for t in 0..TALKS_EACH {
                client
                    .talk_with_id(&room_id, name, "x", &format!("{name}-{t}"))
                    .await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let stream = read_talks(&mut client, 2 * TALKS_EACH, WAIT * 3).await;
            (client, stream)
        })
    };
    let (alice_burst, bob_burst) = (burst(alice, "alice"), burst(bob, "bob"));
    pair.wait_for_talks_stored(10).await;
    pair.redis.single().stop();
    pair.wait_for_readiness(&pair.a, 503).await;
    pair.wait_for_readiness(&pair.b, 503).await;
    // Some of the burst is said while Redis is away (all of what is left, if that is less).
    let before = pair.talks_stored().await;
    pair.wait_for_talks_stored((before + 10).min(2 * TALKS_EACH as u64))
        .await;
    pair.redis.single().restart();

    let (_, alice_stream) = alice_burst.await.unwrap();
    let (_, bob_stream) = bob_burst.await.unwrap();
    assert_gap_free(&bob_stream, bob_enter + 1, "bob");
    let talks = |stream: &Stream| -> Vec<(u64, String)> {
        stream
            .iter()
            .filter(|(_, kind, _)| kind == "TALK")
            .map(|(seq, _, id)| (*seq, id.clone()))
            .collect()
    };
    assert_eq!(
        talks(&alice_stream),
        talks(&bob_stream),
        "both saw the same TALKs in order"
    );
    let stored: Vec<(u64, String)> = pair
        .history(&room_id)
        .await
        .iter()
        .filter(|e| e["type"] == "TALK")
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["clientMsgId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        talks(&bob_stream),
        stored,
        "what members saw is what was stored"
    );
    pair.wait_for_readiness(&pair.a, 200).await;
    pair.wait_for_readiness(&pair.b, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_means_unavailable_and_the_service_recovers_by_itself() {
    let proxy = Proxy::start(postgres_server()).await;
    let pair = two_instances_via(Some(&proxy), Some(&proxy)).await;
    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;
    alice.talk_with_id(&room_id, "alice", "before", "c-1").await;
    alice.next_of_type("TALK").await;
    bob.next_of_type("TALK").await;

    proxy.cut();
    pair.wait_for_readiness(&pair.a, 503).await;
    alice.talk_with_id(&room_id, "alice", "lost?", "c-2").await;
    let refused = alice.next_error("UNAVAILABLE").await;
    assert_eq!(refused["clientMsgId"], "c-2");

    proxy.restore();
    pair.wait_for_readiness(&pair.a, 200).await;
    pair.wait_for_readiness(&pair.b, 200).await;
    alice.talk_with_id(&room_id, "alice", "after", "c-3").await;
    let after = bob.next_of_type("TALK").await;
    assert_eq!(
        after["clientMsgId"], "c-3",
        "bob got nothing that was not stored"
    );
    let stored: Vec<Value> = pair
        .history(&room_id)
        .await
        .iter()
        .map(|e| e["clientMsgId"].clone())
        .collect();
    assert_eq!(
        stored,
        [Value::Null, Value::Null, json!("c-1"), json!("c-3")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_room_closes_for_members_on_every_instance_after_its_last_event() {
    let pair = two_instances().await;
    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;
    for i in 0..5 {
        bob.talk_with_id(&room_id, "bob", "last words", &format!("b-{i}"))
            .await;
    }
    for i in 0..5 {
        assert_eq!(
            bob.next_of_type("TALK").await["clientMsgId"],
            format!("b-{i}")
        );
    }

    // Alice, on the other instance, may not have had them yet: CLOSED must wait for them.
    pair.delete_room(&pair.a, &room_id).await;

    let seen = ids_until_closed(&mut alice).await;
    assert_eq!(
        seen,
        ["b-0", "b-1", "b-2", "b-3", "b-4"],
        "CLOSED after the last event"
    );
    assert_eq!(bob.next_of_type("CLOSED").await["roomId"], room_id.as_str());
}

/// The other instance may learn of a deletion only from storage (the instance that deleted
/// the room died before Redis could carry the news): it still closes the room after the
/// room's real last event, so its members first get what they had not had yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_learnt_from_storage_closes_after_the_rooms_last_event() {
    let mut pair = two_instances().await;
    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;

    pair.redis.single().stop();
    pair.wait_for_readiness(&pair.b, 503).await;
    for i in 0..3 {
        alice
            .talk_with_id(&room_id, "alice", "while Redis was away", &format!("c-{i}"))
            .await;
    }
    for i in 0..3 {
        assert_eq!(
            alice.next_of_type("TALK").await["clientMsgId"],
            format!("c-{i}")
        );
    }
    pair.delete_room(&pair.a, &room_id).await;
    pair.a.kill();
    pair.redis.single().restart();

    let seen = ids_until_closed(&mut bob).await;
    assert_eq!(
        seen,
        ["c-0", "c-1", "c-2"],
        "CLOSED after the room's last event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_stopped_cleanly_tells_the_others_its_members_left_at_once() {
    let mut pair = two_instances().await;
    let room_id = pair.a.create_room(None).await;
    let (mut alice, _) = member(&pair.a, &room_id, "alice").await;
    let (_bob, _) = member(&pair.b, &room_id, "bob").await;
    alice.next_of_type("ENTER").await;

    let stopped = Instant::now();
    pair.b.sigterm();
    assert!(pair.b.wait().success());

    let leave = alice.next_of_type("LEAVE").await;
    assert_eq!(leave["sender"], "bob");
    // Published on the way out, not found by the next sync with storage (every 2 s).
    assert!(
        stopped.elapsed() < Duration::from_secs(1),
        "bob's LEAVE came {:?} after SIGTERM",
        stopped.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_instances_need_shared_storage_and_a_redis_url() {
    let data = crate::helpers::Data::new().await;
    for (redis_url, named) in [
        ("redis://127.0.0.1:1/", "DATABASE_URL"),
        ("http://not-redis", "REDIS_URL"),
    ] {
        let mut settings = crate::helpers::test_settings(&data.url());
        if named == "REDIS_URL" {
            settings.database_url = "postgres://nobody@127.0.0.1:1/none".parse().unwrap();
        }
        settings.redis_url = Some(redis_url.parse().unwrap());
        let Err(error) = chat::startup::Application::build(settings).await else {
            panic!("started with REDIS_URL {redis_url}");
        };
        assert!(error.to_string().contains(named), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_stays_up_and_carries_events_without_storage_reads() {
    let pair = two_instances().await;
    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;

    // Past the subscribers' first beats, heard back.
    for process in [&pair.a, &pair.b] {
        let deadline = Instant::now() + WAIT;
        while metric(&pair, process, "chat_broker_pings_total{result=\"ok\"}").await < 1.0 {
            assert!(
                Instant::now() < deadline,
                "the subscription was never checked"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    alice.talk(&room_id, "alice", "through Redis").await;
    assert_eq!(bob.next_of_type("TALK").await["message"], "through Redis");

    for process in [&pair.a, &pair.b] {
        let log = process.log();
        assert_eq!(log.matches("subscribed to Redis").count(), 1, "{log}");
        assert!(!log.contains("lost the Redis subscription"), "{log}");
    }
    let metrics = pair.http.get(pair.b.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("chat_gap_fills_total 0"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_said_while_redis_was_down_arrives_when_it_is_back_even_with_nothing_after() {
    let mut pair = two_instances().await;
    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;

    pair.redis.single().stop();
    pair.wait_for_readiness(&pair.b, 503).await;
    alice
        .talk_with_id(&room_id, "alice", "while Redis was away", "c-1")
        .await;
    assert_eq!(
        alice.next_of_type("TALK").await["clientMsgId"],
        "c-1",
        "stored and acknowledged"
    );
    pair.redis.single().restart();

    let talk = bob.next_of_type("TALK").await;
    assert_eq!(talk["clientMsgId"], "c-1");
    bob.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_network_goes_silent_mid_transaction_holds_up_the_others_for_seconds() {
    let proxy = Proxy::start(postgres_server()).await;
    let pair = two_instances_via(Some(&proxy), None).await;
    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;

    // A's next batch locks the room's row (its first statement after BEGIN), then A's network
    // stops answering, without closing.
    proxy.freeze_after_next(b"BEGIN\0");
    alice.talk_with_id(&room_id, "alice", "stuck", "a-1").await;
    let deadline = Instant::now() + WAIT;
    while !proxy.is_frozen() {
        assert!(Instant::now() < deadline, "A never sent its batch");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let frozen_at = Instant::now();
    bob.talk_with_id(&room_id, "bob", "still here", "b-1").await;

    let ack = bob.next_of_type("TALK").await;
    assert_eq!(ack["clientMsgId"], "b-1");
    let held = frozen_at.elapsed();
    assert!(
        held < Duration::from_secs(5),
        "B stored in the same room after {held:?}, not within seconds"
    );
    let leave = bob.next_of_type("LEAVE").await;
    assert_eq!(leave["sender"], "alice", "A's members left: A is silent");
    let bound = Duration::from_millis(1200) + Duration::from_secs(2);
    assert!(
        frozen_at.elapsed() < held + bound,
        "alice left {:?} after the freeze",
        frozen_at.elapsed()
    );

    proxy.thaw();
    assert_eq!(
        alice.expect_close().await,
        1012,
        "A learns it was taken for dead"
    );
    pair.wait_for_member_count(&room_id, 1).await;
    let history = pair.history(&room_id).await;
    let ids: Vec<&str> = history
        .iter()
        .filter_map(|event| event["clientMsgId"].as_str())
        .collect();
    assert_eq!(ids.iter().filter(|id| **id == "b-1").count(), 1);
    assert!(ids.iter().filter(|id| **id == "a-1").count() <= 1);
    let leaves = history
        .iter()
        .filter(|event| event["type"] == "LEAVE")
        .count();
    assert_eq!(leaves, 1, "alice left once");
}

/// A series' value in an instance's `/metrics`, 0 while absent.
async fn metric(pair: &Pair, process: &ChatProcess, series: &str) -> f64 {
    let response = pair.http.get(process.url("/metrics")).send().await.unwrap();
    let text = response.text().await.unwrap();
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_writer_is_stuck_is_not_taken_for_dead() {
    const OK: &str = "chat_heartbeats_total{result=\"ok\"}";
    let pair = two_instances().await;
    let (calm, busy) = (
        pair.a.create_room(None).await,
        pair.a.create_room(None).await,
    );
    let (mut alice, _) = member(&pair.a, &calm, "alice").await;
    let (mut bob, _) = member(&pair.b, &calm, "bob").await;
    alice.next_of_type("ENTER").await;
    let (mut carol, _) = member(&pair.a, &busy, "carol").await;

    // A's writer waits for the busy room's lock, held from a side connection, for longer
    // than the instance timeout (1 s): A is busy, not dead.
    let mut side = sqlx::PgConnection::connect(&pair.database_url())
        .await
        .unwrap();
    let lock = format!("BEGIN; SELECT 1 FROM rooms WHERE room_id = '{busy}' FOR UPDATE");
    sqlx::raw_sql(sqlx::AssertSqlSafe(lock))
        .execute(&mut side)
        .await
        .unwrap();
    carol.talk_with_id(&busy, "carol", "waiting", "c-1").await;
    let before = metric(&pair, &pair.a, OK).await;
    let deadline = Instant::now() + WAIT;
    while metric(&pair, &pair.a, OK).await < before + 8.0 {
        assert!(Instant::now() < deadline, "A stopped heartbeating");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    bob.expect_silence(Duration::from_millis(100)).await;
    sqlx::raw_sql("COMMIT").execute(&mut side).await.unwrap();
    assert_eq!(carol.next_of_type("TALK").await["clientMsgId"], "c-1");
    alice
        .talk_with_id(&calm, "alice", "still here", "a-1")
        .await;
    let next = bob.next_json().await;
    assert_eq!(
        (next["type"].as_str(), next["clientMsgId"].as_str()),
        (Some("TALK"), Some("a-1")),
        "alice was never taken for dead: {next}"
    );
    assert_eq!(
        metric(&pair, &pair.a, "chat_heartbeats_total{result=\"evicted\"}").await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_that_empties_while_redis_is_down_keeps_no_ordering_state() {
    const ORDERED: &str = "chat_ordered_rooms";
    const FILLS: &str = "chat_gap_fills_total";
    let mut pair = two_instances().await;
    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;
    assert_eq!(metric(&pair, &pair.a, ORDERED).await, 1.0);

    pair.redis.single().stop();
    pair.wait_for_readiness(&pair.a, 503).await;
    alice.leave(&room_id, "alice").await;
    assert_eq!(bob.next_of_type("LEAVE").await["sender"], "alice");
    assert_eq!(
        metric(&pair, &pair.a, ORDERED).await,
        0.0,
        "A has no member there"
    );
    for _ in 0..3 {
        bob.talk_and_await(&room_id, "bob", "while alice is away", 1)
            .await;
    }
    pair.redis.single().restart();
    pair.wait_for_readiness(&pair.a, 200).await;
    pair.wait_for_readiness(&pair.b, 200).await;
    let fills = metric(&pair, &pair.a, FILLS).await;

    let enter = alice.join(&room_id, "alice").await;
    assert_eq!(enter["seq"], 7);
    bob.talk_with_id(&room_id, "bob", "welcome back", "b-1")
        .await;
    assert_eq!(alice.next_of_type("TALK").await["clientMsgId"], "b-1");
    assert_eq!(
        metric(&pair, &pair.a, FILLS).await,
        fills,
        "no gap was read from storage: A started the room afresh"
    );
    assert_eq!(metric(&pair, &pair.a, ORDERED).await, 1.0);
}

/// What one batch stores in a room goes to the other instances in one message (`events`,
/// in seq order), and their members get each event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_a_rooms_events_crosses_in_one_message_in_order() {
    let database = TestDatabase::create().await;
    let redis = RedisServer::start();
    let redis_url = redis.url();
    let mut env = vec![
        ("DATABASE_URL", database.url.as_str()),
        ("REDIS_URL", &redis_url),
    ];
    env.extend(FAST_LIVENESS);
    let b = ChatProcess::start(&env);
    // a waits 100 ms for more before each commit, so TALKs sent together are one batch.
    env.push(("CHAT_COMMIT_WAIT_US", "100000"));
    let a = ChatProcess::start(&env);
    let pair = both_ready(database, Broker::Single(redis), a, b).await;
    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;
    let mut watcher = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    watcher
        .subscribe(format!("chat:room:{room_id}"))
        .await
        .unwrap();

    let ids: Vec<String> = (0..5).map(|n| format!("a-{n}")).collect();
    for id in &ids {
        alice.talk_with_id(&room_id, "alice", "together", id).await;
    }
    for id in &ids {
        assert_eq!(bob.next_of_type("TALK").await["clientMsgId"], id.as_str());
    }

    let mut messages = watcher.on_message();
    let message = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut messages))
        .await
        .expect("a's message on the room's channel")
        .expect("the subscription stays open");
    let envelope: Value = serde_json::from_slice(message.get_payload_bytes()).unwrap();
    let events = envelope["events"]
        .as_array()
        .unwrap_or_else(|| panic!("the five TALKs in one message: {envelope}"));
    let carried: Vec<(&str, i64)> = events
        .iter()
        .map(|event| {
            (
                event["clientMsgId"].as_str().unwrap(),
                event["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    let first = carried[0].1;
    let expected: Vec<(&str, i64)> = ids
        .iter()
        .zip(first..)
        .map(|(id, seq)| (id.as_str(), seq))
        .collect();
    assert_eq!(carried, expected, "{envelope}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_on_redis_claiming_a_seq_storage_does_not_hold_silences_nobody() {
    let mut pair = two_instances().await;
    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;

    let forged = json!({
        "origin": uuid::Uuid::new_v4(),
        "event": {
            "type": "TALK", "roomId": room_id, "seq": 1_000_000_000u64,
            "messageId": uuid::Uuid::new_v4(), "sender": "mallory",
            "message": "from the future", "sentAt": "2026-12-06T00:00:00.000Z"
        }
    });
    pair.redis
        .single()
        .publish(&format!("chat:room:{room_id}"), &forged.to_string());
    // Each instance waits for the seqs before it, then reads storage for them.
    let deadline = Instant::now() + WAIT;
    for process in [&pair.a, &pair.b] {
        while metric(&pair, process, "chat_gap_fills_total").await < 1.0 {
            assert!(
                Instant::now() < deadline,
                "nobody looked the claim up in storage"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for i in 0..3 {
        bob.talk_with_id(&room_id, "bob", "after it", &format!("b-{i}"))
            .await;
        let heard = alice.next_json().await;
        assert_eq!(
            (heard["type"].as_str(), heard["clientMsgId"].as_str()),
            (Some("TALK"), Some(format!("b-{i}").as_str())),
            "alice still hears the room: {heard}"
        );
    }
    alice
        .talk_with_id(&room_id, "alice", "and back", "a-1")
        .await;
    assert_eq!(bob.next_of_type("TALK").await["clientMsgId"], "b-0");
    assert_eq!(bob.next_of_type("TALK").await["clientMsgId"], "b-1");
    assert_eq!(bob.next_of_type("TALK").await["clientMsgId"], "b-2");
    assert_eq!(bob.next_of_type("TALK").await["clientMsgId"], "a-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_with_a_password_and_postgres_over_tls_carry_the_cluster() {
    const PASSWORD: &str = "a-redis-password-never-logged";
    let database = TestDatabase::create().await;
    let redis = RedisServer::start_secured(PASSWORD);
    let url = database.url.replace("sslmode=disable", "sslmode=require");
    let ca = tls_fixture("ca.pem");
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("REDIS_URL", &redis.url()),
        ("CHAT_REDIS_CA_FILE", &ca),
    ];
    let (a, b) = (ChatProcess::start(&env), ChatProcess::start(&env));
    let pair = both_ready(database, Broker::Single(redis), a, b).await;

    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;
    alice
        .talk_with_id(&room_id, "alice", "over TLS", "a-1")
        .await;
    assert_eq!(bob.next_of_type("TALK").await["clientMsgId"], "a-1");
    assert_eq!(
        metric(&pair, &pair.b, "chat_gap_fills_total").await,
        0.0,
        "it came through Redis, not from storage"
    );

    let mut side = sqlx::PgConnection::connect(&pair.database_url())
        .await
        .unwrap();
    let encrypted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE application_name = 'chat' AND datname = current_database() AND ssl",
    )
    .fetch_one(&mut side)
    .await
    .unwrap();
    let all: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = 'chat' AND datname = current_database()",
    )
    .fetch_one(&mut side)
    .await
    .unwrap();
    assert!(
        encrypted > 0 && encrypted == all,
        "{encrypted} of {all} connections use TLS"
    );
    for process in [&pair.a, &pair.b] {
        assert!(
            !process.log().contains(PASSWORD),
            "the password never reaches the log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_redis_password_is_not_ready() {
    let database = TestDatabase::create().await;
    let redis = RedisServer::start_secured("the-right-one");
    let wrong = redis.url().replace("the-right-one", "a-wrong-one");
    let ca = tls_fixture("ca.pem");
    let process = ChatProcess::start(&[
        ("DATABASE_URL", database.url.as_str()),
        ("REDIS_URL", &wrong),
        ("CHAT_REDIS_CA_FILE", &ca),
    ]);
    let pair = Pair {
        b: ChatProcess::start(&[("DATABASE_URL", database.url.as_str())]),
        a: process,
        redis: Broker::Single(redis),
        http: crate::helpers::http_client(),
        database,
    };
    pair.wait_for_readiness(&pair.b, 200).await;
    let deadline = Instant::now() + WAIT;
    while !pair.a.log().contains("cannot connect to Redis") {
        assert!(
            Instant::now() < deadline,
            "it never tried Redis:\n{}",
            pair.a.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pair.readiness(&pair.a).await, 503, "Redis refused it");
    assert!(
        !pair.a.log().contains("a-wrong-one"),
        "the password never reaches the log"
    );
}

/// A STOMP subscriber's stream of the room until `talks` TALKs arrived, as [`read_talks`].
async fn read_stomp_talks(client: &mut StompClient, talks: usize) -> Stream {
    let mut stream = Vec::new();
    while stream.iter().filter(|(_, kind, _)| kind == "TALK").count() < talks {
        let event = client.next_event().await;
        let id = event["clientMsgId"].as_str().unwrap_or_default().to_owned();
        let kind = event["type"].as_str().unwrap().to_owned();
        stream.push((event["seq"].as_u64().unwrap(), kind, id));
    }
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stomp_subscriber_on_one_instance_sees_what_a_ws_chat_member_on_another_sees() {
    const TALKS_EACH: usize = 30;
    let pair = two_instances().await;
    let room_id = pair.a.create_room(None).await;
    let topic = format!("/sub/chat/room/{room_id}");
    let mut stomp = StompClient::connect(pair.a.port).await;
    stomp.subscribe("room", &topic).await;
    let (mut chat, entered) = member(&pair.b, &room_id, "chat").await;
    stomp
        .chat(json!({"type": "ENTER", "roomId": room_id, "sender": "stomp"}))
        .await;
    assert_eq!(stomp.next_event().await["seq"], entered);
    assert_eq!(stomp.next_event().await["sender"], "stomp");
    assert_eq!(chat.next_of_type("ENTER").await["sender"], "stomp");

    let stomp_side = {
        let room_id = room_id.clone();
        async move {
            for t in 0..TALKS_EACH {
                let talk = json!({"type": "TALK", "roomId": room_id, "sender": "stomp", "message": "hi", "clientMsgId": format!("s-{t}")});
                stomp.chat(talk).await;
            }
            read_stomp_talks(&mut stomp, 2 * TALKS_EACH).await
        }
    };
    let chat_side = {
        let room_id = room_id.clone();
        async move {
            for t in 0..TALKS_EACH {
                chat.talk_with_id(&room_id, "chat", "hi", &format!("c-{t}"))
                    .await;
            }
            read_talks(&mut chat, 2 * TALKS_EACH, WAIT * 2).await
        }
    };
    let (seen_by_stomp, seen_by_chat) = tokio::join!(stomp_side, chat_side);

    assert_gap_free(&seen_by_chat, entered + 2, "the /ws/chat member");
    assert_eq!(
        seen_by_stomp, seen_by_chat,
        "the same events in the same order"
    );

    // A subscription on the other instance resumes from storage with the same events.
    let mut late = StompClient::connect(pair.b.port).await;
    let after = entered.to_string();
    late.ask_to_subscribe("r", &topic, Some(&after)).await;
    late.expect("RECEIPT").await;
    assert_eq!(late.next_event().await["sender"], "stomp");
    let replayed = read_stomp_talks(&mut late, 2 * TALKS_EACH).await;
    assert_eq!(replayed, seen_by_chat);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_typing_and_read_markers_span_instances() {
    let pair = two_instances().await;
    let room_id = pair.a.create_room(None).await;
    let (mut alice, _) = member(&pair.a, &room_id, "alice").await;
    let (mut bob, _) = member(&pair.b, &room_id, "bob").await;
    let (alice_on_b, _) = member(&pair.b, &room_id, "alice").await;
    assert_eq!(alice.next_of_type("ENTER").await["sender"], "bob");
    alice.next_of_type("ENTER").await;
    bob.next_of_type("ENTER").await;

    for process in [&pair.a, &pair.b] {
        let list = pair
            .get_json(process.url(&format!("/api/rooms/{room_id}/members")))
            .await;
        let items: Vec<(&str, u64)> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["sender"].as_str().unwrap(),
                    m["sessions"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(items, [("alice", 2), ("bob", 1)]);
        assert_eq!(list["asOfSeq"], 3);
    }

    // Typing notices between TALKs: they reach the other instance and never hold up or
    // reorder the events.
    for i in 0..10 {
        let typing = json!({"type": "TYPING", "roomId": room_id, "sender": "alice"});
        alice.send_json(typing).await;
        alice.talk(&room_id, "alice", &format!("m{i}")).await;
    }
    let mut seqs = Vec::new();
    let mut typing = 0;
    while seqs.len() < 10 {
        let frame = bob.next_json().await;
        match frame["type"].as_str() {
            Some("TYPING") => {
                assert_eq!(frame["sender"], "alice");
                typing += 1;
            }
            Some("TALK") => seqs.push(frame["seq"].as_u64().unwrap()),
            _ => panic!("unexpected {frame}"),
        }
    }
    assert_eq!(seqs, (4..=13).collect::<Vec<_>>());
    assert!(typing >= 1, "at least the first typing notice crossed over");

    bob.send_json(json!({"type": "READ", "roomId": room_id, "sender": "bob", "seq": 13}))
        .await;
    let expected = json!({"type": "READ", "roomId": room_id, "sender": "bob", "seq": 13});
    loop {
        let frame = alice.next_json().await;
        if frame["type"] == "READ" {
            assert_eq!(frame, expected);
            break;
        }
    }
    let list = pair
        .get_json(pair.a.url(&format!("/api/rooms/{room_id}/members")))
        .await;
    assert_eq!(list["items"][1]["readSeq"], 13);
    drop(alice_on_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_racing_on_two_instances_store_each_message_once() {
    const MESSAGES: usize = 30;
    let pair = two_instances().await;
    let room_id = pair.a.create_room(None).await;
    let (mut on_a, _) = member(&pair.a, &room_id, "alice").await;
    let (on_b, _) = member(&pair.b, &room_id, "alice").await;
    on_a.next_of_type("ENTER").await;

    let resend = |mut client: WsClient| {
        let room_id = room_id.clone();
        async move {
            for i in 0..MESSAGES {
                let id = format!("c-{i}");
                client.talk_with_id(&room_id, "alice", "once", &id).await;
            }
            // Each session hears back about each of its TALKs: the stored one (its own, or the
            // other session's arriving as an event) or a duplicate.
            let mut own = std::collections::HashMap::new();
            let mut seen_stored = HashSet::new();
            while own.len() < MESSAGES || seen_stored.len() < MESSAGES {
                let frame = client.next_json().await;
                let id = frame["clientMsgId"].as_str().unwrap().to_owned();
                if frame["duplicate"] == true {
                    own.insert(id, frame["seq"].as_u64().unwrap());
                } else {
                    seen_stored.insert((id.clone(), frame["seq"].as_u64().unwrap()));
                    own.entry(id).or_insert(0);
                }
            }
            seen_stored
        }
    };
    let (seen_on_a, seen_on_b) = tokio::join!(resend(on_a), resend(on_b));

    assert_eq!(seen_on_a, seen_on_b, "both saw the same stored TALKs");
    assert_eq!(seen_on_a.len(), MESSAGES);
    let stored = pair.history(&room_id).await;
    let talks: Vec<&Value> = stored.iter().filter(|e| e["type"] == "TALK").collect();
    assert_eq!(talks.len(), MESSAGES, "each clientMsgId stored once");
    let ids: HashSet<&str> = talks
        .iter()
        .map(|e| e["clientMsgId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), MESSAGES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_the_other_instance_in_order_and_storage_answers_the_same_there() {
    let pair = two_instances().await;
    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;
    alice.talk(&room_id, "alice", "draft").await;
    let talk = alice.next_of_type("TALK").await;
    assert_eq!(bob.next_of_type("TALK").await, talk);

    let target = talk["seq"].clone();
    let frames = [
        json!({"type": "EDIT", "roomId": room_id, "sender": "alice", "targetSeq": target, "message": "final"}),
        json!({"type": "REACT", "roomId": room_id, "sender": "alice", "targetSeq": target, "emoji": "👍"}),
        json!({"type": "TALK", "roomId": room_id, "sender": "alice", "message": "see above", "replyTo": target}),
    ];
    for frame in frames {
        alice.send_json(frame).await;
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = bob.next_json().await;
        seen.push((event["type"].clone(), event["seq"].clone()));
    }
    let seq = target.as_u64().unwrap();
    assert_eq!(
        seen,
        [
            (json!("EDIT"), json!(seq + 1)),
            (json!("REACT"), json!(seq + 2)),
            (json!("TALK"), json!(seq + 3)),
        ]
    );
    bob.send_json(json!({"type": "REACT", "roomId": room_id, "sender": "bob", "targetSeq": target, "emoji": "👍"}))
        .await;
    loop {
        let event = alice.next_json().await;
        if event["type"] == "REACT" && event["sender"] == "bob" {
            break;
        }
    }

    let on_b = pair
        .get_json(
            pair.b
                .url(&format!("/api/rooms/{room_id}/messages?afterSeq=0")),
        )
        .await;
    let now = on_b["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["seq"] == target)
        .cloned()
        .unwrap();
    assert_eq!(now["message"], "final");
    assert_eq!(
        now["reactions"],
        json!([{"emoji": "👍", "count": 2, "senders": ["alice", "bob"]}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_set_on_one_instance_erases_for_both_and_a_resume_on_the_other_is_told() {
    let pair = two_instances().await;
    let (room_id, mut alice, _bob) = pair.alice_on_a_and_bob_on_b().await;
    alice
        .talk_and_await(&room_id, "alice", "old news", 30)
        .await;
    let last = pair.room(&pair.a, &room_id).await["lastSeq"]
        .as_u64()
        .unwrap();

    let url = pair.b.url(&format!("/api/rooms/{room_id}"));
    let body = json!({"retention": {"maxEvents": 5}});
    let patched = pair.http.patch(url).json(&body).send().await.unwrap();
    assert_eq!(patched.status(), 200);

    let first = last - 4;
    let started = Instant::now();
    while pair.room(&pair.a, &room_id).await["firstSeq"] != first {
        assert!(started.elapsed() < WAIT, "retention did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pair.history(&room_id).await.len(), 5);
    // A wider limit holds firstSeq here: with 5, carol's own ENTER would push `first` out too,
    // within 50 ms, while she is being told where the room starts.
    let body = json!({"retention": {"maxEvents": 1000}});
    let url = pair.b.url(&format!("/api/rooms/{room_id}"));
    let widened = pair.http.patch(url).json(&body).send().await.unwrap();
    assert_eq!(widened.status(), 200);
    let mut carol = connect(pair.b.port).await;
    carol.enter_after(&room_id, "carol", 0).await;
    assert_eq!(
        carol.next_json().await,
        json!({"type": "TRUNCATED", "roomId": room_id, "firstSeq": first})
    );
    assert_eq!(carol.next_json().await["seq"], first);
}

/// Two instances in identity mode over one database and one Redis, both ready.
async fn two_signed_instances() -> Pair {
    two_signed_instances_with(&[]).await
}

/// Like [`two_signed_instances`], with these variables too.
async fn two_signed_instances_with(extra: &[(&str, &str)]) -> Pair {
    use crate::suite::identity::{AUDIENCE, ISSUER, SECRET};
    let database = TestDatabase::create().await;
    let redis = RedisServer::start();
    let signed = |database_url: &str| {
        let mut env = vec![
            ("DATABASE_URL", database_url),
            ("CHAT_JWT_SECRET", SECRET),
            ("CHAT_JWT_ISSUER", ISSUER),
            ("CHAT_JWT_AUDIENCE", AUDIENCE),
        ];
        let redis_url = redis.url();
        env.push(("REDIS_URL", redis_url.as_str()));
        env.extend(FAST_LIVENESS);
        env.extend(extra);
        ChatProcess::start(&env)
    };
    let pair = Pair {
        a: signed(&database.url),
        b: signed(&database.url),
        redis: Broker::Single(redis),
        http: crate::helpers::http_client(),
        database,
    };
    for process in [&pair.a, &pair.b] {
        pair.wait_for_readiness(process, 200).await;
    }
    pair
}

/// A WebSocket on `process` signed in as `name`, entered in the room.
async fn signed_member(process: &ChatProcess, room_id: &str, name: &str) -> WsClient {
    let bearer = format!("Bearer {}", crate::suite::identity::token_for(name));
    let here = std::net::IpAddr::from([127, 0, 0, 1]);
    let headers = [("authorization", bearer.as_str())];
    let mut client = crate::helpers::try_upgrade(process.port, here, "/ws/chat", &headers)
        .await
        .expect("the upgrade is accepted");
    client.join(room_id, name).await;
    client
}

/// Reads until a frame of this type arrives.
async fn next_frame_of(client: &mut WsClient, kind: &str) -> Value {
    loop {
        let frame = client.next_json().await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_through_one_instance_takes_effect_on_the_other_within_a_second() {
    let pair = two_signed_instances().await;
    let alice = crate::suite::identity::token_for("alice");
    let as_alice = |method: reqwest::Method, path: String, body: Option<Value>| {
        let request = pair
            .http
            .request(method, pair.a.url(&path))
            .bearer_auth(&alice);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let created: Value = pair
        .http
        .post(pair.a.url("/api/rooms"))
        .bearer_auth(&alice)
        .json(&json!({"name": "team", "visibility": "private"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let room_id = created["roomId"].as_str().unwrap().to_owned();
    let roles = format!("/api/rooms/{room_id}/roles/bob");
    let member_role = Some(json!({"role": "member"}));
    assert_eq!(
        as_alice(reqwest::Method::PUT, roles.clone(), member_role.clone()).await,
        200
    );
    let mut owner = signed_member(&pair.a, &room_id, "alice").await;
    let mut bob = signed_member(&pair.b, &room_id, "bob").await;
    next_frame_of(&mut owner, "ENTER").await;

    let mute = format!("/api/rooms/{room_id}/mutes/bob");
    assert_eq!(as_alice(reqwest::Method::PUT, mute, None).await, 200);
    let answered = Instant::now();
    assert_eq!(
        next_frame_of(&mut bob, "MODERATION").await["action"],
        "mute"
    );
    assert!(
        answered.elapsed() < Duration::from_secs(1),
        "{:?}",
        answered.elapsed()
    );
    bob.talk(&room_id, "bob", "let me speak").await;
    bob.next_error("MUTED").await;

    let kick = format!("/api/rooms/{room_id}/members/bob");
    assert_eq!(as_alice(reqwest::Method::DELETE, kick, None).await, 204);
    let answered = Instant::now();
    let removed = next_frame_of(&mut bob, "REMOVED").await;
    assert!(
        answered.elapsed() < Duration::from_secs(1),
        "{:?}",
        answered.elapsed()
    );
    assert_eq!(removed["reason"], "kicked");
    let leave = next_frame_of(&mut owner, "LEAVE").await;
    assert_eq!(
        leave["sender"], "bob",
        "the LEAVE is stored and reaches the other instance"
    );

    bob.join(&room_id, "bob").await;
    assert_eq!(as_alice(reqwest::Method::DELETE, roles, None).await, 204);
    let answered = Instant::now();
    let removed = next_frame_of(&mut bob, "REMOVED").await;
    assert!(
        answered.elapsed() < Duration::from_secs(1),
        "{:?}",
        answered.elapsed()
    );
    assert_eq!(removed["reason"], "revoked");
    bob.enter(&room_id, "bob").await;
    bob.next_error("ROOM_NOT_FOUND").await;
    let hidden = pair
        .http
        .get(pair.b.url(&format!("/api/rooms/{room_id}")))
        .bearer_auth(crate::suite::identity::token_for("bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), 404);
}

/// The instance holding the webhook's lease, as storage says.
async fn lease_holder(pair: &Pair) -> String {
    let mut db = sqlx::PgConnection::connect(&pair.database_url())
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let holder: Option<String> =
            sqlx::query_scalar("SELECT lease_instance::text FROM webhooks")
                .fetch_one(&mut db)
                .await
                .unwrap();
        if let Some(holder) = holder {
            return holder;
        }
        assert!(started.elapsed() < WAIT, "nobody took the webhook's lease");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_delivers_a_webhook_and_a_killed_deliverer_is_replaced_without_a_gap() {
    use crate::suite::helpers::receiver::{Answer, Receiver};
    use crate::suite::identity::admin_token;
    use crate::suite::webhooks::{create_webhook_on, publish_on};
    let webhooks = [
        ("CHAT_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("CHAT_WEBHOOK_LEASE_MS", "1000"),
        ("CHAT_WEBHOOK_POLL_MS", "20"),
        ("CHAT_WEBHOOK_TIMEOUT_MS", "60000"),
    ];
    let mut pair = two_signed_instances_with(&webhooks).await;
    let mut receiver = Receiver::start();
    let room_id = pair.a.create_room(Some(&admin_token())).await;
    create_webhook_on(&pair.b, &receiver.url()).await;
    let mut sent = Vec::new();
    for n in 0..20 {
        let on = if n % 2 == 0 { &pair.a } else { &pair.b };
        sent.push(publish_on(on, &room_id, &format!("m{n}")).await);
    }
    let last = sent.last().unwrap()["seq"].clone();
    let got = receiver.until(|d| d.event["seq"] == last).await;
    let ids: Vec<&str> = got.iter().map(|d| d.id.as_str()).collect();
    let expected: Vec<&str> = sent
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids, expected,
        "each once, in order, whichever instance stored it"
    );

    receiver.answer(|_| Answer::Stall);
    let stalled = publish_on(&pair.a, &room_id, "in flight").await;
    assert_eq!(receiver.next().await.event, stalled);
    let holder = lease_holder(&pair).await;
    let (deliverer, survivor) = match pair.a.log().contains(&holder) {
        true => (&mut pair.a, &pair.b),
        false => (&mut pair.b, &pair.a),
    };
    receiver.answer(|_| Answer::Status(200));
    deliverer.kill();
    let mut after = Vec::new();
    for n in 0..3 {
        after.push(publish_on(survivor, &room_id, &format!("after {n}")).await);
    }
    let last = after.last().unwrap()["seq"].clone();
    let got = receiver.until(|d| d.event["seq"] == last).await;
    let ids: Vec<&str> = got.iter().map(|d| d.id.as_str()).collect();
    let mut expected = vec![stalled["messageId"].as_str().unwrap()];
    expected.extend(after.iter().map(|e| e["messageId"].as_str().unwrap()));
    assert_eq!(
        ids, expected,
        "the one in flight again (same webhook-id), then the rest"
    );
}

/// Two instances over one database, their broker the master a set of Sentinels names.
async fn two_instances_behind_sentinels() -> Pair {
    let database = TestDatabase::create().await;
    let sentinels = SentinelSet::start();
    let urls = (database.url.clone(), sentinels.url());
    let each = (urls.0.as_str(), urls.1.as_str());
    started(database, Broker::Sentinels(sentinels), each, each).await
}

/// Alice's next `count` TALKs as bob receives them: their texts, each seq one after the last.
async fn talks_in_order(bob: &mut WsClient, count: usize) -> Vec<String> {
    let mut texts = Vec::new();
    let mut last: Option<u64> = None;
    for _ in 0..count {
        let talk = bob.next_of_type("TALK").await;
        let seq = talk["seq"].as_u64().unwrap();
        if let Some(last) = last {
            assert_eq!(seq, last + 1, "in seq order, nothing missing or repeated");
        }
        last = Some(seq);
        texts.push(talk["message"].as_str().unwrap().to_owned());
    }
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_after_the_master_dies_is_followed_without_a_restart_and_loses_nothing()
{
    let mut pair = two_instances_behind_sentinels().await;
    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;
    let said = |phase: &str, count: usize| {
        (0..count)
            .map(|n| format!("{phase} {n}"))
            .collect::<Vec<_>>()
    };
    for text in said("before", 10) {
        alice.talk(&room_id, "alice", &text).await;
    }
    assert_eq!(talks_in_order(&mut bob, 10).await, said("before", 10));

    let Broker::Sentinels(sentinels) = &mut pair.redis else {
        unreachable!("built behind Sentinels")
    };
    let promoted = sentinels.replica.port;
    // Killed, not asked to step down: nothing is left at the old address to fall back on.
    sentinels.master.stop();
    for text in said("during", 20) {
        alice.talk(&room_id, "alice", &text).await;
    }
    assert_eq!(talks_in_order(&mut bob, 20).await, said("during", 20));
    let Broker::Sentinels(sentinels) = &pair.redis else {
        unreachable!("built behind Sentinels")
    };
    let started = Instant::now();
    while sentinels.master_port() != Some(promoted) {
        assert!(started.elapsed() < WAIT, "the replica was never promoted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Through the new master, not only through storage's gap fills: b receives them by Redis.
    for process in [&pair.a, &pair.b] {
        pair.wait_for_readiness(process, 200).await;
    }
    let received = metric(&pair, &pair.b, "chat_broker_received_total").await;
    for text in said("after", 10) {
        alice.talk(&room_id, "alice", &text).await;
    }
    assert_eq!(talks_in_order(&mut bob, 10).await, said("after", 10));
    let started = Instant::now();
    while metric(&pair, &pair.b, "chat_broker_received_total").await < received + 10.0 {
        assert!(
            started.elapsed() < WAIT,
            "the new master never carried them"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two instances over one database, their broker a three-master Redis Cluster.
async fn two_instances_on_a_redis_cluster() -> Pair {
    two_instances_on(RedisCluster::start()).await
}

/// Two instances over one database, their broker this cluster.
async fn two_instances_on(cluster: RedisCluster) -> Pair {
    let database = TestDatabase::create().await;
    let urls = (database.url.clone(), cluster.url());
    let each = (urls.0.as_str(), urls.1.as_str());
    started(database, Broker::Cluster(cluster), each, each).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_rooms_spread_over_every_shard_and_every_event_arrives_in_order() {
    let pair = two_instances_on_a_redis_cluster().await;
    let mut rooms = thirty_rooms(&pair).await;
    let texts: Vec<String> = (0..3).map(|n| format!("m{n}")).collect();
    said_and_heard(&mut rooms, &texts).await;

    let Broker::Cluster(cluster) = &pair.redis else {
        unreachable!("built on a cluster")
    };
    for port in &cluster.ports {
        let channels = cluster.cli(*port, &["PUBSUB", "SHARDCHANNELS"]);
        assert!(
            channels.contains("chat:{p"),
            "node {port} carries rooms too: {channels:?}"
        );
    }
    // Through the shards, not only through storage's gap fills.
    b_receives(&pair, 90.0).await;
    // Each instance hears its own beats back on all 128 partitions, so on every shard.
    for process in [&pair.a, &pair.b] {
        beats_heard(&pair, process, 1.0).await;
    }
}

/// Once both instances are ready again, what alice says in every room ("after 0" to "after 2")
/// reaches bob through Redis, and both hear their beats back on every channel.
async fn all_carried_again(pair: &Pair, rooms: &mut [(String, WsClient, WsClient)]) {
    for process in [&pair.a, &pair.b] {
        pair.wait_for_readiness(process, 200).await;
    }
    let received = metric(pair, &pair.b, "chat_broker_received_total").await;
    let after: Vec<String> = (0..3).map(|n| format!("after {n}")).collect();
    said_and_heard(rooms, &after).await;
    b_receives(pair, received + 90.0).await;
    beats_come_back(pair).await;
}

/// Waits until both instances have heard two more rounds of their beats on every channel.
async fn beats_come_back(pair: &Pair) {
    for process in [&pair.a, &pair.b] {
        let heard = metric(pair, process, "chat_broker_pings_total{result=\"ok\"}").await;
        beats_heard(pair, process, heard + 2.0).await;
    }
}

/// Waits until `process` has heard back at least `rounds` rounds of its beats, each on every
/// beat channel.
async fn beats_heard(pair: &Pair, process: &ChatProcess, rounds: f64) {
    let started = Instant::now();
    while metric(pair, process, "chat_broker_pings_total{result=\"ok\"}").await < rounds {
        assert!(started.elapsed() < WAIT, "its beats did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_over_tls_with_a_password_and_its_own_authority_carries_the_rooms() {
    const PASSWORD: &str = "a-cluster-password-never-logged";
    let cluster = RedisCluster::start_secured(PASSWORD);
    let url = cluster.url();
    assert!(url.starts_with("rediss+cluster://"), "{url}");
    let pair = trusting_the_test_authority(Broker::Cluster(cluster), &url).await;

    let mut rooms = thirty_rooms(&pair).await;
    said_and_heard(&mut rooms, &["over TLS".to_owned()]).await;
    b_receives(&pair, 30.0).await;
    beats_heard_without_telling(&pair, PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_over_a_tls_master_with_a_password_and_its_own_authority_carry_the_rooms() {
    const PASSWORD: &str = "a-sentinel-password-never-logged";
    let sentinels = SentinelSet::start_secured(PASSWORD);
    let url = sentinels.url();
    assert!(url.starts_with("rediss+sentinel://"), "{url}");
    let pair = trusting_the_test_authority(Broker::Sentinels(sentinels), &url).await;

    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;
    alice.talk(&room_id, "alice", "over TLS").await;
    assert_eq!(talks_in_order(&mut bob, 1).await, ["over TLS"]);
    b_receives(&pair, 1.0).await;
    beats_heard_without_telling(&pair, PASSWORD).await;
}

/// Both instances hear their beats back, and neither logged the password.
async fn beats_heard_without_telling(pair: &Pair, password: &str) {
    for process in [&pair.a, &pair.b] {
        beats_heard(pair, process, 1.0).await;
        let log = process.log();
        assert!(
            !log.contains(password),
            "the password never reaches the log"
        );
    }
}

/// Two instances over one database and `redis`, at `url`, trusting the test certificates'
/// authority (`CHAT_REDIS_CA_FILE`); both ready.
async fn trusting_the_test_authority(redis: Broker, url: &str) -> Pair {
    let database = TestDatabase::create().await;
    let ca = tls_fixture("ca.pem");
    let env = [
        ("DATABASE_URL", database.url.as_str()),
        ("REDIS_URL", url),
        ("CHAT_REDIS_CA_FILE", &ca),
    ];
    let (a, b) = (ChatProcess::start(&env), ChatProcess::start(&env));
    both_ready(database, redis, a, b).await
}

/// Thirty rooms, alice on a and bob on b in each: with three shards, the chance that one
/// carries none of them is 3 x (2/3)^30, about 1 in 70,000.
async fn thirty_rooms(pair: &Pair) -> Vec<(String, WsClient, WsClient)> {
    let mut rooms = Vec::new();
    for _ in 0..30 {
        rooms.push(pair.alice_on_a_and_bob_on_b().await);
    }
    rooms
}

/// Alice says each of `texts` in every room; bob gets them, in order, in every room.
async fn said_and_heard(rooms: &mut [(String, WsClient, WsClient)], texts: &[String]) {
    for (room_id, alice, _) in rooms.iter_mut() {
        for text in texts {
            alice.talk(room_id, "alice", text).await;
        }
    }
    for (_, _, bob) in rooms.iter_mut() {
        assert_eq!(talks_in_order(bob, texts.len()).await, texts);
    }
}

/// Waits until instance b has received at least `count` messages from Redis.
async fn b_receives(pair: &Pair, count: f64) {
    let started = Instant::now();
    loop {
        let received = metric(pair, &pair.b, "chat_broker_received_total").await;
        if received >= count {
            return;
        }
        let unpublished = metric(pair, &pair.a, "chat_broker_unpublished_total").await;
        assert!(
            started.elapsed() < WAIT,
            "Redis carried {received} of {count} to b ({unpublished} unpublished by a)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_killed_mid_burst_loses_and_repeats_nothing_and_its_replica_carries_on() {
    let mut pair = two_instances_on(RedisCluster::with_replicas(1)).await;
    let mut rooms = thirty_rooms(&pair).await;
    let texts = |phase: &str| (0..3).map(|n| format!("{phase} {n}")).collect::<Vec<_>>();
    said_and_heard(&mut rooms, &texts("before")).await;

    let Broker::Cluster(cluster) = &mut pair.redis else {
        unreachable!("built on a cluster")
    };
    let victim = cluster.masters()[0];
    cluster.kill(victim);
    said_and_heard(&mut rooms, &texts("during")).await;
    let started = Instant::now();
    while cluster.masters().len() < 3
        || !cluster
            .ports
            .iter()
            .any(|p| *p != victim && cluster.ok_on(*p))
    {
        assert!(started.elapsed() < WAIT, "no replica took over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Every room's events come through Redis again, the promoted replica's shard's too, and
    // every partition's beats come back on both.
    all_carried_again(&pair, &mut rooms).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_a_cluster_under_load_loses_and_repeats_nothing_and_channels_follow_their_slots()
{
    let pair = two_instances_on_a_redis_cluster().await;
    let mut rooms = thirty_rooms(&pair).await;
    let texts = |phase: &str| (0..3).map(|n| format!("{phase} {n}")).collect::<Vec<_>>();
    said_and_heard(&mut rooms, &texts("before")).await;

    let Broker::Cluster(cluster) = &pair.redis else {
        unreachable!("built on a cluster")
    };
    let masters = cluster.masters();
    // Every slot of one master to another while the rooms talk: each channel it carried
    // moves, and the master is left with none.
    let mut reshard = cluster.reshard(masters[0], masters[1], 16384);
    let resharding = tokio::task::spawn_blocking(move || reshard.status());
    said_and_heard(&mut rooms, &texts("during")).await;
    let status = resharding.await.unwrap().expect("redis-cli runs");
    assert!(status.success(), "redis-cli --cluster reshard failed");
    let left = cluster.cli(masters[0], &["PUBSUB", "SHARDCHANNELS"]);
    assert!(!left.contains("chat:{p"), "its channels moved: {left:?}");

    // The beat channels followed their slots too: their rounds are heard again on every
    // partition, and no instance took its subscription for wedged.
    all_carried_again(&pair, &mut rooms).await;
    for process in [&pair.a, &pair.b] {
        let log = process.log();
        assert!(!log.contains("no longer reaches"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_that_answers_but_brings_nothing_is_noticed_by_its_beats() {
    let (pair, proxy, room_id, mut alice, mut bob) = b_through_a_proxy().await;

    // Every command b sends is still answered (a PING would pass); no message reaches it.
    proxy.drop_pushes();
    let dropped = Instant::now();
    pair.wait_for_readiness(&pair.b, 503).await;
    assert!(
        dropped.elapsed() < Duration::from_secs(10),
        "noticed within the bound, in an idle room: {:?}",
        dropped.elapsed()
    );
    assert!(
        metric(&pair, &pair.b, "chat_broker_pings_total{result=\"failed\"}").await >= 1.0,
        "counted"
    );
    assert!(
        pair.b.log().contains("no longer reaches this instance"),
        "{}",
        pair.b.log()
    );

    said_while_wedged(&pair, &room_id, &mut alice, &mut bob).await;
    let readiness = pair.http.get(pair.b.url("/readyz")).send().await.unwrap();
    assert_eq!(
        readiness.status(),
        503,
        "subscribed anew, but still nothing comes"
    );

    proxy.pass_pushes();
    carried_again(&pair, &room_id, &mut alice, &mut bob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedged_subscription_is_noticed_in_an_idle_room_and_its_gap_filled_from_storage() {
    let (pair, proxy, room_id, mut alice, mut bob) = b_through_a_proxy().await;

    // Open but silent from b's next PING on (its publisher checks Redis every idle second):
    // nothing b's connections send or receive goes through any more.
    proxy.freeze_on(b"PING");
    let started = Instant::now();
    while !proxy.is_frozen() {
        assert!(started.elapsed() < WAIT, "b never pinged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let frozen = Instant::now();
    said_while_wedged(&pair, &room_id, &mut alice, &mut bob).await;
    pair.wait_for_readiness(&pair.b, 503).await;
    assert!(
        frozen.elapsed() < Duration::from_secs(10),
        "noticed within the bound"
    );

    proxy.thaw();
    carried_again(&pair, &room_id, &mut alice, &mut bob).await;
}

/// Two instances on one Redis, b reaching it only through a proxy that can wedge it; alice
/// on a and bob on b in a room, and a first TALK through.
async fn b_through_a_proxy() -> (Pair, Proxy, String, WsClient, WsClient) {
    let database = TestDatabase::create().await;
    let redis = RedisServer::start();
    let proxy = Proxy::start(("127.0.0.1".into(), redis.port)).await;
    let through_proxy = format!("redis://127.0.0.1:{}/", proxy.port);
    let (database_url, redis_url) = (database.url.clone(), redis.url());
    let a = (database_url.as_str(), redis_url.as_str());
    let b = (database_url.as_str(), through_proxy.as_str());
    let pair = started(database, Broker::Single(redis), a, b).await;
    let (room_id, mut alice, mut bob) = pair.alice_on_a_and_bob_on_b().await;
    alice.talk(&room_id, "alice", "before").await;
    assert_eq!(talks_in_order(&mut bob, 1).await, ["before"]);
    (pair, proxy, room_id, alice, bob)
}

/// While b's subscription is wedged, what alice says still reaches bob, read from storage
/// (nothing else comes to the room to reveal the gap), and the fill is counted.
async fn said_while_wedged(pair: &Pair, room_id: &str, alice: &mut WsClient, bob: &mut WsClient) {
    let fills = metric(pair, &pair.b, "chat_gap_fills_total").await;
    alice.talk(room_id, "alice", "while wedged").await;
    assert_eq!(talks_in_order(bob, 1).await, ["while wedged"]);
    assert!(
        metric(pair, &pair.b, "chat_gap_fills_total").await > fills,
        "read from storage, and counted"
    );
}

/// Once the proxy lets b's subscription be again, b is ready and Redis carries alice's TALK to
/// bob.
async fn carried_again(pair: &Pair, room_id: &str, alice: &mut WsClient, bob: &mut WsClient) {
    pair.wait_for_readiness(&pair.b, 200).await;
    let received = metric(pair, &pair.b, "chat_broker_received_total").await;
    alice.talk(room_id, "alice", "after").await;
    assert_eq!(talks_in_order(bob, 1).await, ["after"]);
    b_receives(pair, received + 1.0).await;
}
