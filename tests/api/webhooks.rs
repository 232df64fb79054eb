//! Webhooks (PROTOCOL.md, "Bots and integrations"): an admin's, with a secret shown once;
//! every event of their rooms and types posted in `seq` order per room, signed as Standard
//! Webhooks (checked with the `standardwebhooks` npm package), retried from the same event
//! while other rooms go on, resumed from the stored position after a restart.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat::config::Settings;
use serde_json::{Value, json};

use super::helpers::receiver::{Answer, Delivery, Receiver};
use super::identity::{admin_token, create_room_as, get_as, identity_mode, token_for};
use crate::helpers::{TestApp, spawn_app_with};

/// Identity, loopback receivers allowed, quick polls and leases, a 500 ms timeout.
pub fn webhook_mode(s: &mut Settings) {
    identity_mode(s);
    s.webhooks.webhook_allow_private = true;
    s.webhooks.webhook_poll_ms = 20;
    s.webhooks.webhook_lease_ms = 1000;
    s.webhooks.webhook_timeout_ms = 500;
}

async fn post_webhook(app: &TestApp, token: Option<&str>, body: Value) -> reqwest::Response {
    let request = app.http.post(app.url("/api/webhooks")).json(&body);
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.expect("POST /api/webhooks")
}

/// A webhook created by an admin: its id and secret.
async fn create_webhook(app: &TestApp, body: Value) -> (String, String) {
    let response = post_webhook(app, Some(&admin_token()), body).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("JSON");
    let id = created["webhookId"].as_str().expect("an id").to_owned();
    (id, created["secret"].as_str().expect("a secret").to_owned())
}

/// A TALK published by alice; its Event.
async fn talk(app: &TestApp, room_id: &str, message: &str) -> Value {
    publish_at(&app.url(""), room_id, message).await
}

/// Waits until the webhook's position in the room passes `check`; the webhook as read then.
async fn position_until(
    app: &TestApp,
    id: &str,
    room_id: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/api/webhooks/{id}");
    let token = admin_token();
    let webhook = app
        .wait_for_json(&path, Some(&token), |webhook| {
            position_in(webhook, room_id).is_some_and(&check)
        })
        .await;
    position_in(&webhook, room_id).cloned().expect("a position")
}

fn position_in<'a>(webhook: &'a Value, room_id: &str) -> Option<&'a Value> {
    webhook["positions"]
        .as_array()?
        .iter()
        .find(|position| position["roomId"] == room_id)
}

/// Checks every delivery's signature with the Standard Webhooks reference library.
fn verify_with_standardwebhooks(secret: &str, deliveries: &[Delivery]) {
    let input = json!({
        "secret": secret,
        "deliveries": deliveries.iter().map(|d| json!({
            "id": d.id, "timestamp": d.timestamp, "signature": d.signature, "body": d.body,
        })).collect::<Vec<_>>(),
    });
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/contract/verify-webhooks.mjs"
    );
    let mut node = Command::new("node")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (scripts/test installs tests/contract's packages)");
    let mut stdin = node.stdin.take().expect("stdin");
    stdin
        .write_all(input.to_string().as_bytes())
        .expect("input");
    drop(stdin);
    let output = node.wait_with_output().expect("node ends");
    assert!(
        output.status.success(),
        "standardwebhooks refused a delivery: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert_eq!(said.trim(), format!("verified {}", deliveries.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_an_admins_in_identity_mode_and_the_secret_is_shown_once() {
    let open = spawn_app_with(|_| {}).await;
    let refused = post_webhook(&open, None, json!({"url": "https://example.com/"})).await;
    assert_eq!(refused.status(), 403, "identity off");
    let listed = open
        .http
        .get(open.url("/api/webhooks"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 403);

    let app = spawn_app_with(webhook_mode).await;
    let body = json!({"url": "https://example.com/hook"});
    assert_eq!(post_webhook(&app, None, body.clone()).await.status(), 401);
    let alice = token_for("alice");
    assert_eq!(
        post_webhook(&app, Some(&alice), body.clone())
            .await
            .status(),
        403
    );
    assert_eq!(get_as(&app, "/api/webhooks", &alice).await.status(), 403);

    let response = post_webhook(&app, Some(&admin_token()), body).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["webhookId"].as_str().unwrap();
    assert_eq!(location, format!("/api/webhooks/{id}"));
    assert_eq!(created["url"], "https://example.com/hook");
    assert_eq!(
        (&created["rooms"], &created["types"]),
        (&Value::Null, &Value::Null)
    );
    let secret = created["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );

    let list: Value = get_as(&app, "/api/webhooks", &admin_token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["webhookId"], id);
    assert!(
        list["items"][0].get("secret").is_none(),
        "shown once: {list}"
    );
    let one: Value = get_as(&app, &location, &admin_token())
        .await
        .json()
        .await
        .unwrap();
    assert!(one.get("secret").is_none());
    assert_eq!(one["positions"], json!([]));

    let delete = |token: String| {
        let request = app.http.delete(app.url(&location)).bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(delete(alice.clone()).await, 403);
    assert_eq!(delete(admin_token()).await, 204);
    assert_eq!(delete(admin_token()).await, 404);
    let gone = get_as(&app, &location, &admin_token()).await;
    assert_eq!(gone.status(), 404);
    let problem: Value = gone.json().await.unwrap();
    assert_eq!(problem["code"], "WEBHOOK_NOT_FOUND");
    let bad_id = get_as(&app, "/api/webhooks/not-a-uuid", &admin_token()).await;
    assert_eq!(bad_id.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhooks_are_invalid_request_and_private_addresses_need_allowing() {
    let strict = spawn_app_with(identity_mode).await;
    let room_id = create_room_as(&strict, &admin_token()).await;
    let long = format!("https://example.com/{}", "a".repeat(2048));
    for bad in [
        json!({}),
        json!({"url": 7}),
        json!({"url": ""}),
        json!({"url": "ftp://example.com/"}),
        json!({"url": "example.com/hook"}),
        json!({"url": long}),
        json!({"url": "https://example.com/#part"}),
        json!({"url": "http://127.0.0.1:9/hook"}),
        json!({"url": "http://localhost:9/hook"}),
        json!({"url": "http://10.0.0.8/hook"}),
        json!({"url": "http://[::1]/hook"}),
        json!({"url": "http://169.254.169.254/latest/meta-data"}),
        json!({"url": "https://example.com/", "rooms": []}),
        json!({"url": "https://example.com/", "rooms": ["nope"]}),
        json!({"url": "https://example.com/", "rooms": [uuid::Uuid::new_v4()]}),
        json!({"url": "https://example.com/", "rooms": room_id}),
        json!({"url": "https://example.com/", "types": []}),
        json!({"url": "https://example.com/", "types": ["talk"]}),
        json!({"url": "https://example.com/", "types": ["TYPING"]}),
        json!({"url": "https://example.com/", "secret": "mine"}),
    ] {
        let response = post_webhook(&strict, Some(&admin_token()), bad.clone()).await;
        assert_eq!(response.status(), 400, "{bad}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "INVALID_REQUEST", "{bad}");
    }
    let list: Value = get_as(&strict, "/api/webhooks", &admin_token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([]), "nothing was created");

    let allowing = spawn_app_with(webhook_mode).await;
    let local = json!({"url": "http://127.0.0.1:9/hook", "types": ["TALK", "TALK"]});
    let response = post_webhook(&allowing, Some(&admin_token()), local).await;
    assert_eq!(response.status(), 201, "CHAT_WEBHOOK_ALLOW_PRIVATE=true");
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["types"], json!(["TALK"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_once_in_seq_order_signed_as_standard_webhooks() {
    let app = spawn_app_with(webhook_mode).await;
    let mut receiver = Receiver::start();
    let room_id = create_room_as(&app, &admin_token()).await;
    let before = talk(&app, &room_id, "before the webhook").await;
    let (id, secret) = create_webhook(&app, json!({"url": receiver.url()})).await;

    let mut sent = Vec::new();
    for n in 0..30 {
        sent.push(talk(&app, &room_id, &format!("message {n}")).await);
    }
    let last = sent.last().unwrap()["seq"].clone();
    let deliveries = receiver.until(|d| d.event["seq"] == last).await;
    assert_eq!(
        deliveries.len(),
        30,
        "each once, none from before the webhook"
    );
    for (delivery, event) in deliveries.iter().zip(&sent) {
        assert_eq!(&delivery.event, event, "the Event, as stored");
        assert_eq!(delivery.id, event["messageId"].as_str().unwrap());
        let stamped: i64 = delivery.timestamp.parse().unwrap();
        assert!(
            (stamped - super::identity::now()).abs() < 60,
            "Unix seconds: {stamped}"
        );
    }
    assert_ne!(deliveries[0].event["seq"], before["seq"]);
    verify_with_standardwebhooks(&secret, &deliveries);

    let position = position_until(&app, &id, &room_id, |p| p["deliveredSeq"] == last).await;
    assert_eq!(position["lastSeq"], last);
    assert_eq!(
        (&position["lastError"], &position["failingSince"]),
        (&Value::Null, &Value::Null)
    );
    let metrics = metrics(&app).await;
    assert!(
        metrics.contains("chat_webhook_deliveries_total{result=\"delivered\"} 30"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("chat_webhook_lag_events{{webhook=\"{id}\"}}")));
    assert!(receiver.nothing_more());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_room_is_retried_from_the_same_event_while_other_rooms_go_on() {
    let app = spawn_app_with(webhook_mode).await;
    let mut receiver = Receiver::start();
    let (failing, fine) = (
        create_room_as(&app, &admin_token()).await,
        create_room_as(&app, &admin_token()).await,
    );
    let (id, _) = create_webhook(&app, json!({"url": receiver.url()})).await;
    let refused = failing.clone();
    receiver.answer(move |event| match event["roomId"] == refused.as_str() {
        true => Answer::Status(500),
        false => Answer::Status(200),
    });
    let first = talk(&app, &failing, "one").await;
    talk(&app, &failing, "two").await;
    let position = position_until(&app, &id, &failing, |p| p["lastError"] == "HTTP 500").await;
    assert_eq!(position["deliveredSeq"], first["seq"].as_i64().unwrap() - 1);
    assert!(position["failingSince"].is_string());

    let other = talk(&app, &fine, "meanwhile").await;
    let got = receiver.until(|d| d.event["roomId"] == fine.as_str()).await;
    assert_eq!(got.last().unwrap().event, other, "the other room goes on");
    assert!(
        got[..got.len() - 1]
            .iter()
            .all(|d| d.id == first["messageId"])
    );

    receiver.answer(|_| Answer::Status(200));
    let three = talk(&app, &failing, "three").await;
    let got = receiver
        .until(|d| d.event["seq"] == three["seq"] && d.event["roomId"] == failing.as_str())
        .await;
    let mut seqs: Vec<i64> = got
        .iter()
        .filter(|d| d.event["roomId"] == failing.as_str())
        .map(|d| d.event["seq"].as_i64().unwrap())
        .collect();
    seqs.dedup();
    let from = first["seq"].as_i64().unwrap();
    assert_eq!(
        seqs,
        (from..=from + 2).collect::<Vec<_>>(),
        "in order, none skipped"
    );
    let position = position_until(&app, &id, &failing, |p| p["deliveredSeq"] == three["seq"]).await;
    assert_eq!(
        (&position["lastError"], &position["failingSince"]),
        (&Value::Null, &Value::Null)
    );
    let metrics = metrics(&app).await;
    assert!(
        metrics.contains("chat_webhook_deliveries_total{result=\"status\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_receiver_times_out_and_a_redirect_is_not_followed() {
    let app = spawn_app_with(webhook_mode).await;
    let mut receiver = Receiver::start();
    let mut elsewhere = Receiver::start();
    let room_id = create_room_as(&app, &admin_token()).await;
    let (id, _) = create_webhook(&app, json!({"url": receiver.url()})).await;

    receiver.answer(|_| Answer::Stall);
    let event = talk(&app, &room_id, "hello").await;
    let no_answer = |p: &Value| p["lastError"] == "no answer within 500 ms";
    position_until(&app, &id, &room_id, no_answer).await;

    let port = elsewhere.port;
    receiver.answer(move |_| Answer::RedirectTo(port));
    position_until(&app, &id, &room_id, |p| p["lastError"] == "HTTP 302").await;
    assert!(elsewhere.nothing_more(), "the redirect was not followed");

    receiver.answer(|_| Answer::Status(204));
    position_until(&app, &id, &room_id, |p| p["deliveredSeq"] == event["seq"]).await;
    let mut attempts = Vec::new();
    while !receiver.nothing_more_after(&mut attempts) {}
    assert!(
        attempts.len() >= 3,
        "a stall, a redirect, a 204: {attempts:?}"
    );
    assert!(
        attempts
            .iter()
            .all(|d| d.id == event["messageId"].as_str().unwrap())
    );
    assert!(elsewhere.nothing_more(), "the redirect was never followed");
    elsewhere.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_types_choose_what_is_sent_and_the_rest_is_passed_over() {
    let app = spawn_app_with(webhook_mode).await;
    let mut receiver = Receiver::start();
    let (chosen, other) = (
        create_room_as(&app, &admin_token()).await,
        create_room_as(&app, &admin_token()).await,
    );
    let body = json!({"url": receiver.url(), "rooms": [chosen], "types": ["EDIT"]});
    let (id, _) = create_webhook(&app, body).await;
    let mut alice = super::identity::connect_as(&app, &token_for("alice")).await;
    alice.join(&chosen, "alice").await;
    let said = talk(&app, &chosen, "typo").await;
    talk(&app, &other, "elsewhere").await;
    alice
        .send_json(json!({"type": "EDIT", "roomId": chosen, "sender": "alice", "targetSeq": said["seq"], "message": "fixed"}))
        .await;
    let edit = receiver.next().await;
    assert_eq!(
        (&edit.event["type"], &edit.event["roomId"]),
        (&json!("EDIT"), &json!(chosen))
    );
    let closing = talk(&app, &chosen, "passed over").await;
    let position =
        position_until(&app, &id, &chosen, |p| p["deliveredSeq"] == closing["seq"]).await;
    assert_eq!(position["lastSeq"], closing["seq"]);
    assert!(receiver.nothing_more(), "only the EDIT of the chosen room");
    let webhook: Value = get_as(&app, &format!("/api/webhooks/{id}"), &admin_token())
        .await
        .json()
        .await
        .unwrap();
    assert!(position_in(&webhook, &other).is_none(), "{webhook}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_resumes_after_a_restart_where_it_stopped() {
    let app = spawn_app_with(webhook_mode).await;
    let mut receiver = Receiver::start();
    let room_id = create_room_as(&app, &admin_token()).await;
    let (id, secret) = create_webhook(&app, json!({"url": receiver.url()})).await;
    let one = talk(&app, &room_id, "one").await;
    assert_eq!(receiver.next().await.event, one);
    position_until(&app, &id, &room_id, |p| p["deliveredSeq"] == one["seq"]).await;

    receiver.answer(|_| Answer::Status(503));
    let mut pending = Vec::new();
    for text in ["two", "three", "four"] {
        pending.push(talk(&app, &room_id, text).await);
    }
    position_until(&app, &id, &room_id, |p| p["lastError"] == "HTTP 503").await;
    let app = app.restart_with(webhook_mode).await;
    receiver.answer(|_| Answer::Status(200));
    let last = pending.last().unwrap()["seq"].clone();
    let got = receiver
        .until(|d| d.event["seq"] == last && d.event["type"] == "TALK")
        .await;
    let mut ids: Vec<&str> = got.iter().map(|d| d.id.as_str()).collect();
    ids.dedup();
    let expected: Vec<&str> = pending
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids, expected,
        "from where it stopped, nothing acknowledged sent again"
    );
    verify_with_standardwebhooks(&secret, &got);
    position_until(&app, &id, &room_id, |p| p["deliveredSeq"] == last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_webhook_is_sent_nothing_more() {
    let app = spawn_app_with(webhook_mode).await;
    let (mut receiver, mut witness) = (Receiver::start(), Receiver::start());
    let room_id = create_room_as(&app, &admin_token()).await;
    let (id, _) = create_webhook(&app, json!({"url": receiver.url()})).await;
    create_webhook(&app, json!({"url": witness.url()})).await;
    let one = talk(&app, &room_id, "one").await;
    assert_eq!(receiver.next().await.event, one);
    assert_eq!(witness.next().await.event, one);
    let deleted = app
        .http
        .delete(app.url(&format!("/api/webhooks/{id}")))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    // Its delivery has stopped once its lag is no longer reported.
    let series = format!("chat_webhook_lag_events{{webhook=\"{id}\"}}");
    while metrics(&app).await.contains(&series) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let two = talk(&app, &room_id, "two").await;
    assert_eq!(
        witness.next().await.event,
        two,
        "the other webhook still gets it"
    );
    assert!(receiver.nothing_more(), "the deleted one got nothing more");
}

async fn metrics(app: &TestApp) -> String {
    let response = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    response.text().await.expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_9_the_next_run_sends_the_event_in_flight_again_and_goes_on() {
    use super::identity::{AUDIENCE, ISSUER, SECRET};
    use crate::helpers::Data;
    use crate::process::ChatProcess;

    let data = Data::new().await;
    let url = data.url();
    // The default lease (15 s) is longer than a test waits: on SQLite a new run takes over at
    // once, and on PostgreSQL a restart that waited for it would fail the wait.
    let lease = match crate::BACKEND {
        crate::helpers::Backend::Sqlite => "15000",
        crate::helpers::Backend::Postgres => "1000",
    };
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("CHAT_JWT_SECRET", SECRET),
        ("CHAT_JWT_ISSUER", ISSUER),
        ("CHAT_JWT_AUDIENCE", AUDIENCE),
        ("CHAT_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("CHAT_WEBHOOK_POLL_MS", "20"),
        ("CHAT_WEBHOOK_LEASE_MS", lease),
    ];
    let mut first = ChatProcess::start(&env);
    let mut receiver = Receiver::start();
    let room_id = first.create_room(Some(&admin_token())).await;
    let secret = create_webhook_on(&first, &receiver.url()).await;
    let one = publish_on(&first, &room_id, "one").await;
    assert_eq!(receiver.next().await.event, one);

    receiver.answer(|_| Answer::Stall);
    let two = publish_on(&first, &room_id, "two").await;
    assert_eq!(receiver.next().await.event, two);
    receiver.answer(|_| Answer::Status(200));
    first.kill();

    let second = ChatProcess::start(&env);
    let again = receiver.next().await;
    assert_eq!(
        again.id,
        two["messageId"].as_str().unwrap(),
        "the one in flight, same id"
    );
    let three = publish_on(&second, &room_id, "three").await;
    let next = receiver.next().await;
    assert_eq!(
        next.event, three,
        "then on, with nothing acknowledged sent again"
    );
    verify_with_standardwebhooks(&secret, &[again, next]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_key_identity_needs_chat_webhook_key_for_webhooks() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/identity");
    let private = std::fs::read(format!("{fixtures}/ec-private.pem")).unwrap();
    let key = EncodingKey::from_ec_pem(&private).unwrap();
    let claims = json!({"sub": "root", "exp": super::identity::now() + 60, "roles": ["admin"]});
    let admin = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).unwrap();
    let public_key = |s: &mut Settings| {
        s.identity.jwt_public_key_file = Some(format!("{fixtures}/ec-public.pem").into());
    };
    let body = json!({"url": "https://example.com/hook"});

    let keyless = spawn_app_with(public_key).await;
    let refused = post_webhook(&keyless, Some(&admin), body.clone()).await;
    assert_eq!(refused.status(), 403);
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("CHAT_WEBHOOK_KEY"),
        "{problem}"
    );

    let keyed = spawn_app_with(|s| {
        public_key(s);
        s.webhooks.webhook_key = Some("a-webhook-key-of-at-least-32-bytes!".parse().unwrap());
    })
    .await;
    assert_eq!(post_webhook(&keyed, Some(&admin), body).await.status(), 201);
}

/// A webhook to `url` created by an admin through a running process; its secret.
pub async fn create_webhook_on(process: &crate::process::ChatProcess, url: &str) -> String {
    let created = crate::helpers::http_client()
        .post(process.url("/api/webhooks"))
        .bearer_auth(admin_token())
        .json(&json!({"url": url}))
        .send()
        .await
        .expect("POST /api/webhooks");
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("JSON");
    created["secret"].as_str().expect("a secret").to_owned()
}

/// A TALK alice publishes through a running process; its Event.
pub async fn publish_on(
    process: &crate::process::ChatProcess,
    room_id: &str,
    message: &str,
) -> Value {
    publish_at(&process.url(""), room_id, message).await
}

/// A TALK alice publishes through the server at `base`; its Event.
async fn publish_at(base: &str, room_id: &str, message: &str) -> Value {
    let response = crate::helpers::http_client()
        .post(format!("{base}/api/rooms/{room_id}/messages"))
        .bearer_auth(token_for("alice"))
        .json(&json!({"message": message}))
        .send()
        .await
        .expect("publish");
    assert_eq!(response.status(), 201);
    response.json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_webhook_starts_within_a_poll_however_long_the_lease() {
    let app = spawn_app_with(|s| {
        webhook_mode(s);
        s.webhooks.webhook_lease_ms = 600_000;
    })
    .await;
    let mut receiver = Receiver::start();
    let room_id = create_room_as(&app, &admin_token()).await;
    create_webhook(&app, json!({"url": receiver.url()})).await;
    let event = talk(&app, &room_id, "soon").await;
    assert_eq!(
        receiver.next().await.event,
        event,
        "not a third of the lease later"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_gone_is_retried_until_it_is_back() {
    let app = spawn_app_with(webhook_mode).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let room_id = create_room_as(&app, &admin_token()).await;
    let url = format!("http://127.0.0.1:{port}/hook");
    let (id, _) = create_webhook(&app, json!({"url": url})).await;
    let first = talk(&app, &room_id, "while it is gone").await;
    let second = talk(&app, &room_id, "and another").await;
    position_until(&app, &id, &room_id, |p| {
        p["lastError"] == "could not connect"
    })
    .await;
    let series = format!("chat_webhook_lag_events{{webhook=\"{id}\"}} 2");
    while !metrics(&app).await.contains(&series) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let text = metrics(&app).await;
    assert!(
        text.contains("chat_webhook_deliveries_total{result=\"unreachable\"}"),
        "{text}"
    );

    let mut receiver = Receiver::start_on(port);
    assert_eq!(
        receiver.next().await.event,
        first,
        "from the event that failed"
    );
    assert_eq!(receiver.next().await.event, second);
    position_until(&app, &id, &room_id, |p| p["deliveredSeq"] == second["seq"]).await;
}

/// More rooms behind than a webhook sends at once: each slot that frees takes the next room at
/// once, not a poll later (8 rooms a poll kept up with about 170 events a second across 100
/// busy rooms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_beyond_the_parallel_ones_start_as_slots_free_not_a_poll_later() {
    const POLL: Duration = Duration::from_secs(4);
    let app = spawn_app_with(|s| {
        webhook_mode(s);
        s.webhooks.webhook_poll_ms = POLL.as_millis() as u64;
    })
    .await;
    let mut receiver = Receiver::start();
    let mut rooms = Vec::new();
    for _ in 0..3 * chat::webhooks::PARALLEL_ROOMS {
        rooms.push(create_room_as(&app, &admin_token()).await);
    }
    create_webhook(&app, json!({"url": receiver.url()})).await;
    // Once the probe is delivered, the webhook's next look is about a poll away: every room
    // has its TALK by then, and that look finds them all behind.
    let probe = talk(&app, &rooms[0], "probe").await;
    assert_eq!(receiver.next().await.event, probe);
    for room_id in &rooms {
        talk(&app, room_id, "one each").await;
    }

    let first = receiver.next().await;
    let started = Instant::now();
    let mut got = vec![first];
    while got.len() < rooms.len() {
        got.push(receiver.next().await);
    }
    let took = started.elapsed();
    assert!(
        took < POLL,
        "{} rooms, {} at once, took {took:?}: rooms waited for a poll",
        rooms.len(),
        chat::webhooks::PARALLEL_ROOMS
    );
    let mut delivered: Vec<&str> = got
        .iter()
        .map(|d| d.event["roomId"].as_str().unwrap())
        .collect();
    delivered.sort_unstable();
    let mut expected: Vec<&str> = rooms.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(delivered, expected, "one TALK of each room, once");
}

/// A webhook's delivery position goes with the writer's next batch, beside other events: a
/// webhook deleted while its position waits for the webhook's row (locked by the DELETE, here
/// held open from a side connection) skips that position, and a TALK queued meanwhile (with a
/// commit wait, in the same batch) is stored all the same. (PostgreSQL, whichever backend the
/// suite runs on: only there can a DELETE run beside the writer's transaction.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_deleted_while_its_position_is_stored_fails_no_event_beside_it() {
    use crate::helpers::{Data, spawn_app_on};
    use sqlx::Connection;

    let data = Arc::new(Data::Database(
        crate::test_database::TestDatabase::create().await,
    ));
    let app = spawn_app_on(data.clone(), |s| {
        webhook_mode(s);
        // Long enough for the position and the next TALK to share a batch.
        s.commit_wait_us = 100_000;
    })
    .await;
    let mut receiver = Receiver::start();
    let room_id = create_room_as(&app, &admin_token()).await;
    let (id, _) = create_webhook(&app, json!({"url": receiver.url()})).await;
    let probe = talk(&app, &room_id, "the webhook runs").await;
    assert_eq!(receiver.next().await.event, probe);
    position_until(&app, &id, &room_id, |p| p["deliveredSeq"] == probe["seq"]).await;
    let mut side = sqlx::PgConnection::connect(&data.url())
        .await
        .expect("a side connection");
    sqlx::raw_sql("BEGIN")
        .execute(&mut side)
        .await
        .expect("BEGIN");
    sqlx::query("DELETE FROM webhooks WHERE webhook_id = $1::uuid")
        .bind(&id)
        .execute(&mut side)
        .await
        .expect("the DELETE, left open");

    let first = talk(&app, &room_id, "delivered").await;
    assert_eq!(receiver.next().await.event, first);
    let (base, room) = (app.url(""), room_id.clone());
    let beside = tokio::spawn(async move { publish_at(&base, &room, "beside the position").await });
    let deadline = Instant::now() + crate::helpers::WAIT;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut side)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the writer never waited for the webhook's row"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sqlx::raw_sql("COMMIT")
        .execute(&mut side)
        .await
        .expect("COMMIT");

    let stored = beside
        .await
        .expect("the TALK beside the position is stored (201)");
    assert_eq!(stored["message"], "beside the position");
    let gone = get_as(&app, &format!("/api/webhooks/{id}"), &admin_token()).await;
    assert_eq!(gone.status(), 404);
    assert!(receiver.nothing_more());
}
