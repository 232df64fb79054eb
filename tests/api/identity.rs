//! Identity mode (PROTOCOL.md, "Identity"): tokens on every `/api/` request and on the upgrade,
//! the admin role, names bound to tokens, expiry, and limits per identity.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat::config::{Settings, Toggle};
use chat::startup::Application;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Data, TestApp, WAIT, WsClient, assert_problem, spawn_app_with, test_settings, try_upgrade,
};
use crate::process::ChatProcess;

pub const SECRET: &str = "an-integration-test-secret-of-32+";
pub const ISSUER: &str = "https://id.example";
pub const AUDIENCE: &str = "chat";
const HERE: [u8; 4] = [127, 0, 0, 1];

pub fn identity_mode(s: &mut Settings) {
    s.identity.jwt_secret = Some(SECRET.parse().unwrap());
    s.identity.jwt_issuer = Some(ISSUER.into());
    s.identity.jwt_audience = Some(AUDIENCE.into());
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims of a token this server accepts, valid for five minutes.
pub fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": now() + 300, "iss": ISSUER, "aud": AUDIENCE})
}

fn sign(algorithm: Algorithm, claims: &Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&Header::new(algorithm), claims, &key).unwrap()
}

pub fn mint(claims: &Value) -> String {
    sign(Algorithm::HS256, claims, SECRET)
}

/// A token for `name` (its `sub` is `user-<name>`).
pub fn token_for(name: &str) -> String {
    let mut claims = claims(&format!("user-{name}"));
    claims["name"] = json!(name);
    mint(&claims)
}

pub fn admin_token() -> String {
    let mut claims = claims("root");
    claims["roles"] = json!(["admin"]);
    mint(&claims)
}

pub fn with(mut claims: Value, field: &str, value: Value) -> Value {
    claims[field] = value;
    claims
}

/// Every kind of bad credential: its name and the Authorization header it makes (None: none).
fn bad_credentials() -> Vec<(&'static str, Option<String>)> {
    let alice = claims("alice");
    let bearer = |token: String| Some(format!("Bearer {token}"));
    let payload = mint(&alice).split('.').nth(1).unwrap().to_owned();
    // {"alg":"none","typ":"JWT"}: an unsigned token.
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    vec![
        ("missing", None),
        ("not bearer", Some("Basic YWxpY2U6cHc=".into())),
        ("malformed", bearer("not-a-jwt".into())),
        (
            "forged",
            bearer(sign(Algorithm::HS256, &alice, &"x".repeat(32))),
        ),
        (
            "wrong algorithm",
            bearer(sign(Algorithm::HS384, &alice, SECRET)),
        ),
        ("unsigned", bearer(unsigned)),
        (
            "expired",
            bearer(mint(&with(alice.clone(), "exp", json!(now() - 60)))),
        ),
        (
            "not yet valid",
            bearer(mint(&with(alice.clone(), "nbf", json!(now() + 60)))),
        ),
        (
            "wrong issuer",
            bearer(mint(&with(alice.clone(), "iss", json!("https://evil")))),
        ),
        (
            "wrong audience",
            bearer(mint(&with(alice.clone(), "aud", json!("mail")))),
        ),
        ("no sub", bearer(mint(&with(alice, "sub", Value::Null)))),
    ]
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<&str>,
) -> reqwest::Response {
    let mut request = app.http.request(method.clone(), app.url(path));
    if method == Method::POST {
        request = request.json(&json!({"name": "sneaky"}));
    }
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.send().await.expect("a response")
}

pub async fn create_room_as(app: &TestApp, token: &str) -> String {
    let response = app
        .http
        .post(app.url("/api/rooms"))
        .bearer_auth(token)
        .json(&json!({"name": "general"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let room: Value = response.json().await.unwrap();
    room["roomId"].as_str().unwrap().to_owned()
}

/// Creates a room as `token`'s identity with this visibility (`public` or `private`); its id.
pub async fn create_visible_as(app: &TestApp, token: &str, visibility: &str) -> String {
    let response = app
        .http
        .post(app.url("/api/rooms"))
        .bearer_auth(token)
        .json(&json!({"name": "team", "visibility": visibility}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let room: Value = response.json().await.unwrap();
    room["roomId"].as_str().unwrap().to_owned()
}

pub async fn get_as(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A WebSocket signed in with the token in its `Authorization` header.
pub async fn connect_as(app: &TestApp, token: &str) -> WsClient {
    let authorization = format!("Bearer {token}");
    try_upgrade(
        app.port,
        IpAddr::from(HERE),
        "/ws/chat",
        &[("authorization", &authorization)],
    )
    .await
    .expect("the upgrade is accepted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_refuses_a_bad_token_with_401_a_bearer_challenge_and_changes_nothing() {
    let app = spawn_app_with(identity_mode).await;
    let room_id = create_room_as(&app, &admin_token()).await;
    let routes = [
        (Method::GET, "/api/rooms".to_owned()),
        (Method::POST, "/api/rooms".to_owned()),
        (Method::GET, format!("/api/rooms/{room_id}")),
        (Method::GET, format!("/api/rooms/{room_id}/messages")),
        (Method::DELETE, format!("/api/rooms/{room_id}")),
        (Method::GET, "/api/nowhere".to_owned()),
    ];

    for (kind, authorization) in bad_credentials() {
        for (method, path) in &routes {
            let response = call(&app, method.clone(), path, authorization.as_deref()).await;
            let challenge = response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                challenge.starts_with("Bearer"),
                "{kind} {method} {path}: {challenge}"
            );
            if authorization.is_some() {
                assert!(challenge.contains("error="), "{kind}: {challenge}");
            }
            let problem = assert_problem(response, 401, "UNAUTHORIZED").await;
            let detail = problem["detail"].as_str().unwrap();
            if let Some(token) = authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "))
            {
                assert!(
                    !detail.contains(token),
                    "{kind}: the detail repeats the token"
                );
            }
        }
    }

    let rooms: Value = get_as(&app, "/api/rooms", &admin_token())
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&Value> = rooms["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["name"])
        .collect();
    assert_eq!(
        names,
        [&json!("general")],
        "no refused request created or deleted a room"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_is_refused_with_401_for_a_bad_token_in_the_header_or_the_query() {
    let app = spawn_app_with(identity_mode).await;

    for (kind, authorization) in bad_credentials() {
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|value| ("authorization", value.as_str()))
            .collect();
        let refused = try_upgrade(app.port, IpAddr::from(HERE), "/ws/chat", &headers)
            .await
            .expect_err(kind);
        assert_eq!(refused.status, 401, "{kind}");
        assert_eq!(refused.problem["code"], "UNAUTHORIZED", "{kind}");
        assert!(
            refused.challenge.is_some_and(|c| c.starts_with("Bearer")),
            "{kind}"
        );

        if let Some(token) = authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
        {
            let path = format!("/ws/chat?access_token={token}");
            let refused = try_upgrade(app.port, IpAddr::from(HERE), &path, &[])
                .await
                .expect_err(kind);
            assert_eq!(
                (refused.status, &refused.problem["code"]),
                (401, &json!("UNAUTHORIZED"))
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_lets_in_by_header_and_by_query_and_public_routes_need_none() {
    let app = spawn_app_with(identity_mode).await;
    let token = token_for("alice");
    let room_id = create_room_as(&app, &token).await;

    let by_query = format!("/ws/chat?access_token={token}");
    let mut alice = try_upgrade(app.port, IpAddr::from(HERE), &by_query, &[])
        .await
        .expect("the token in the query is accepted");
    alice.join(&room_id, "alice").await;
    let mut also_alice = connect_as(&app, &token).await;
    let event = also_alice.join(&room_id, "alice").await;
    assert_eq!(event["sender"], "alice");
    assert_eq!(
        get_as(&app, &format!("/api/rooms/{room_id}"), &token)
            .await
            .status(),
        200
    );

    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api-docs/openapi.json",
        "/swagger-ui/",
        "/",
    ] {
        assert_eq!(app.get(path).await.status(), 200, "{path} stays public");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_room_needs_its_owner_or_the_admin_role() {
    let app = spawn_app_with(identity_mode).await;
    let alice = token_for("alice");
    let room_id = create_room_as(&app, &token_for("olga")).await;
    let delete = |token: String, room: String| {
        app.http
            .delete(app.url(&format!("/api/rooms/{room}")))
            .bearer_auth(token)
            .send()
    };

    let refused = delete(alice.clone(), room_id.clone()).await.unwrap();
    assert_problem(refused, 403, "FORBIDDEN").await;
    let unknown = delete(alice.clone(), uuid::Uuid::new_v4().to_string())
        .await
        .unwrap();
    assert_problem(unknown, 404, "ROOM_NOT_FOUND").await;
    assert_eq!(
        get_as(&app, &format!("/api/rooms/{room_id}"), &alice)
            .await
            .status(),
        200
    );

    let mut member = connect_as(&app, &alice).await;
    member.join(&room_id, "alice").await;
    let deleted = delete(admin_token(), room_id.clone()).await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        member.next_of_type("CLOSED").await["roomId"],
        room_id.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_must_carry_the_identitys_name() {
    let app = spawn_app_with(identity_mode).await;
    let room_id = create_room_as(&app, &token_for("alice")).await;
    let mut alice = connect_as(&app, &token_for("alice")).await;
    let mut named_by_sub = connect_as(&app, &mint(&claims("bob"))).await;

    alice
        .send_json(
            json!({"type": "ENTER", "roomId": room_id, "sender": "mallory", "clientMsgId": "c-1"}),
        )
        .await;
    let refused = alice.next_error("SENDER_MISMATCH").await;
    assert_eq!(
        (&refused["clientMsgId"], &refused["roomId"]),
        (&json!("c-1"), &json!(room_id))
    );
    assert!(
        refused["message"].as_str().unwrap().contains("alice"),
        "{refused}"
    );
    alice.talk(&room_id, "alice", "not in yet").await;
    alice.next_error("NOT_IN_ROOM").await;
    alice.join(&room_id, "alice").await;
    alice.talk(&room_id, "mallory", "spoofed").await;
    alice.next_error("SENDER_MISMATCH").await;
    alice.leave(&room_id, "mallory").await;
    alice.next_error("SENDER_MISMATCH").await;
    named_by_sub.join(&room_id, "bob").await;
    alice.talk(&room_id, "alice", "genuine").await;

    assert_eq!(
        named_by_sub.next_of_type("TALK").await["message"],
        "genuine"
    );
    let (path, token) = (format!("/api/rooms/{room_id}/messages"), token_for("alice"));
    let page: Value = get_as(&app, &path, &token).await.json().await.unwrap();
    let stored: Vec<(&Value, &Value)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (&e["type"], &e["sender"]))
        .collect();
    assert_eq!(
        stored,
        [
            (&json!("ENTER"), &json!("alice")),
            (&json!("ENTER"), &json!("bob")),
            (&json!("TALK"), &json!("alice")),
        ],
        "nothing was stored under another name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_closes_the_session_with_1008_and_a_fresh_one_resumes_losing_nothing() {
    let app = spawn_app_with(identity_mode).await;
    let room_id = create_room_as(&app, &token_for("bob")).await;
    let expires = now() + 2;
    let short_lived = mint(&with(
        with(claims("user-alice"), "name", json!("alice")),
        "exp",
        json!(expires),
    ));
    let mut alice = connect_as(&app, &short_lived).await;
    let mut bob = connect_as(&app, &token_for("bob")).await;
    alice.join(&room_id, "alice").await;
    bob.join(&room_id, "bob").await;
    let last_seen = alice.next_of_type("ENTER").await["seq"].as_u64().unwrap();

    assert_eq!(alice.expect_close().await, 1008);
    let closed_at = SystemTime::now();
    let expiry = UNIX_EPOCH + Duration::from_secs(expires as u64);
    assert!(
        closed_at + Duration::from_millis(100) >= expiry,
        "closed before the token expired"
    );
    assert!(
        closed_at <= expiry + Duration::from_secs(5),
        "closed more than 5 s after expiry"
    );
    for i in 0..3 {
        bob.talk(&room_id, "bob", &format!("while away {i}")).await;
    }
    assert_eq!(bob.next_of_type("LEAVE").await["sender"], "alice");
    // Stored before alice comes back (a TALK reaches its sender once stored), so that her
    // replay holds all three: sent and not yet stored, they could follow her new ENTER.
    for i in 0..3 {
        assert_eq!(
            bob.next_of_type("TALK").await["message"],
            format!("while away {i}")
        );
    }

    let mut back = connect_as(&app, &token_for("alice")).await;
    back.enter_after(&room_id, "alice", last_seen).await;
    let mut replay = Vec::new();
    loop {
        let event = back.next_json().await;
        replay.push((event["seq"].as_u64().unwrap(), event["type"].clone()));
        if event["type"] == "ENTER" && event["sender"] == "alice" {
            break;
        }
    }
    let seqs: Vec<u64> = replay.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        ((last_seen + 1)..=(last_seen + 5)).collect::<Vec<_>>(),
        "{replay:?}"
    );
    assert_eq!(replay[0].1, "LEAVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_the_connection_cap_count_per_identity() {
    let app = spawn_app_with(|s| {
        identity_mode(s);
        s.rate_limit = Toggle::On;
        s.http_rate_per_min = NonZeroU32::new(3).unwrap();
        s.max_connections_per_addr = 2;
    })
    .await;
    let (alice, bob) = (token_for("alice"), token_for("bob"));

    for _ in 0..3 {
        assert_eq!(get_as(&app, "/api/rooms", &alice).await.status(), 200);
    }
    assert_problem(
        get_as(&app, "/api/rooms", &alice).await,
        429,
        "RATE_LIMITED",
    )
    .await;
    assert_eq!(
        get_as(&app, "/api/rooms", &bob).await.status(),
        200,
        "bob has his own quota"
    );
    for _ in 0..3 {
        assert_eq!(
            call(&app, Method::GET, "/api/rooms", None).await.status(),
            401
        );
    }
    let refused_tokens_count_per_address = call(&app, Method::GET, "/api/rooms", None).await;
    assert_problem(refused_tokens_count_per_address, 429, "RATE_LIMITED").await;

    let _held = [
        connect_as(&app, &alice).await,
        connect_as(&app, &alice).await,
    ];
    let authorization = format!("Bearer {alice}");
    let headers = [("authorization", authorization.as_str())];
    let third = try_upgrade(app.port, IpAddr::from(HERE), "/ws/chat", &headers).await;
    assert_eq!(third.expect_err("over the cap").status, 429);
    let _bobs = connect_as(&app, &bob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_are_counted_by_transport_and_reason() {
    let app = spawn_app_with(identity_mode).await;
    let expired = mint(&with(claims("alice"), "exp", json!(now() - 60)));

    call(&app, Method::GET, "/api/rooms", None).await;
    call(
        &app,
        Method::GET,
        "/api/rooms",
        Some(&format!("Bearer {expired}")),
    )
    .await;
    let _ = try_upgrade(
        app.port,
        IpAddr::from(HERE),
        &format!("/ws/chat?access_token={expired}"),
        &[],
    )
    .await;

    let metrics = app.get("/metrics").await.text().await.unwrap();
    for line in [
        r#"chat_auth_refused_total{transport="http",reason="missing"} 1"#,
        r#"chat_auth_refused_total{transport="http",reason="expired"} 1"#,
        r#"chat_auth_refused_total{transport="ws",reason="expired"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(!metrics.contains(&expired), "no token in the metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_cannot_work_refuse_to_start_naming_the_setting() {
    let data = Data::new().await;
    type Configure = fn(&mut Settings);
    let cases: [(&str, Configure); 3] = [
        ("CHAT_JWT_SECRET", |s| {
            s.identity.jwt_secret = Some("short".parse().unwrap())
        }),
        ("CHAT_JWT_PUBLIC_KEY_FILE", |s| {
            s.identity.jwt_secret = Some(SECRET.parse().unwrap());
            s.identity.jwt_public_key_file = Some("/nonexistent.pem".into());
        }),
        ("CHAT_JWT_PUBLIC_KEY_FILE", |s| {
            s.identity.jwt_public_key_file = Some("/nonexistent.pem".into())
        }),
    ];
    for (setting, configure) in cases {
        let mut settings = test_settings(&data.url());
        configure(&mut settings);
        let Err(error) = Application::build(settings).await else {
            panic!("started with a bad {setting}");
        };
        assert!(error.to_string().contains(setting), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ec_public_key_file_verifies_es256_tokens() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/identity");
    let app = spawn_app_with(|s| {
        s.identity.jwt_public_key_file = Some(format!("{fixtures}/ec-public.pem").into());
    })
    .await;
    let private = std::fs::read(format!("{fixtures}/ec-private.pem")).unwrap();
    let key = EncodingKey::from_ec_pem(&private).unwrap();
    let claims = json!({"sub": "alice", "exp": now() + 60});
    let es256 = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).unwrap();

    assert_eq!(get_as(&app, "/api/rooms", &es256).await.status(), 200);
    let hs256 = sign(Algorithm::HS256, &claims, SECRET);
    assert_problem(
        get_as(&app, "/api/rooms", &hs256).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let mut socket = connect_as(&app, &es256).await;
    socket.send_text("not json").await;
    socket.next_error("INVALID_JSON").await;
    let _ = tokio::time::timeout(WAIT, socket.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_and_no_secret_ever_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("chat.db").display());
    let mut server = ChatProcess::start(&[
        ("DATABASE_URL", &database),
        ("CHAT_JWT_SECRET", SECRET),
        ("RUST_LOG", "debug"),
    ]);
    let (base, port) = (server.url(""), server.port);
    let http = crate::helpers::http_client();
    let valid = token_for("alice");
    let expired = mint(&with(claims("bob"), "exp", json!(now() - 60)));
    let forged = sign(Algorithm::HS256, &claims("eve"), &"f".repeat(32));

    for token in [&valid, &expired, &forged] {
        http.get(format!("{base}/api/rooms"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let path = format!("/ws/chat?access_token={token}&x=1");
        if let Ok(mut socket) = try_upgrade(port, IpAddr::from(HERE), &path, &[]).await {
            socket.send_text("not json").await;
            socket.next_error("INVALID_JSON").await;
            socket.close().await;
        }
    }
    let room_id = server.create_room(Some(&valid)).await;
    let mut alice = try_upgrade(
        port,
        IpAddr::from(HERE),
        &format!("/ws/chat?access_token={valid}"),
        &[],
    )
    .await
    .unwrap();
    alice.join(&room_id, "alice").await;
    drop(alice);
    server.sigterm();
    assert!(server.wait().success());

    let text = server.log();
    for (what, secret) in [
        ("a valid token", &valid),
        ("an expired token", &expired),
        ("a forged token", &forged),
    ] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!text.contains(signature), "{what} reached the log");
    }
    assert!(!text.contains(SECRET), "the secret reached the log");
    assert!(
        text.contains("/ws/chat?[redacted"),
        "upgrades are logged, without their query"
    );
    assert!(text.contains("session opened"), "sessions are logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frame_rate_counts_per_identity_across_its_sessions() {
    let app = spawn_app_with(|s| {
        identity_mode(s);
        s.rate_limit = Toggle::On;
        s.ws_rate_per_sec = NonZeroU32::new(1).unwrap();
        s.ws_burst = NonZeroU32::new(4).unwrap();
    })
    .await;
    let alice = token_for("alice");
    let mut sessions = [
        connect_as(&app, &alice).await,
        connect_as(&app, &alice).await,
    ];
    let mut bob = connect_as(&app, &token_for("bob")).await;

    let mut codes = Vec::new();
    for session in &mut sessions {
        for _ in 0..3 {
            session.send_text("not json").await;
        }
        for _ in 0..3 {
            codes.push(session.next_of_type("ERROR").await["code"].clone());
        }
    }
    for _ in 0..3 {
        bob.send_text("not json").await;
        assert_eq!(
            bob.next_of_type("ERROR").await["code"],
            "INVALID_JSON",
            "bob has his own quota"
        );
    }

    let limited = codes.iter().filter(|code| **code == "RATE_LIMITED").count();
    assert!(
        limited >= 1,
        "six frames of one identity against a burst of 4 at 1/s: {codes:?}"
    );
}
