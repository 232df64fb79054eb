//! Limits per client address: WebSocket connections it may hold, and whose address it is
//! behind a reverse proxy.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use chat::config::{Settings, Toggle};

use crate::helpers::{TestApp, WAIT, WsClient, spawn_app_with, try_connect};

const HERE: [u8; 4] = [127, 0, 0, 1];
const ELSEWHERE: [u8; 4] = [127, 0, 0, 2];

fn capped(per_address: usize) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.rate_limit = Toggle::On;
        s.max_connections_per_addr = per_address;
    }
}

fn behind_local_proxy(s: &mut Settings) {
    s.trusted_proxies = "127.0.0.1".parse().unwrap();
}

async fn open(app: &TestApp, from: [u8; 4], headers: &[(&'static str, &'static str)]) -> WsClient {
    match try_connect(app.port, IpAddr::from(from), headers).await {
        Ok(client) => client,
        Err((status, problem)) => panic!("refused with {status}: {problem}"),
    }
}

async fn assert_refused(app: &TestApp, from: [u8; 4], headers: &[(&'static str, &'static str)]) {
    let Err((status, problem)) = try_connect(app.port, IpAddr::from(from), headers).await else {
        panic!("the upgrade went through");
    };
    assert_eq!(status, 429);
    assert_eq!(problem["code"], "RATE_LIMITED", "{problem}");
    assert_eq!(problem["status"], 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_over_its_connection_cap_is_refused_with_429_at_the_upgrade() {
    let app = spawn_app_with(capped(3)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(open(&app, HERE, &[]).await);
    }

    assert_refused(&app, HERE, &[]).await;
    let _other = open(&app, ELSEWHERE, &[]).await;

    held.pop().unwrap().close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while try_connect(app.port, IpAddr::from(HERE), &[])
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a closed connection never freed its place"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rate_limits_off_there_is_no_connection_cap() {
    let app = spawn_app_with(|s| {
        capped(1)(s);
        s.rate_limit = Toggle::Off;
    })
    .await;
    let _first = open(&app, HERE, &[]).await;
    let _second = open(&app, HERE, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_cap() {
    let app = spawn_app_with(|s| {
        capped(1)(s);
        behind_local_proxy(s);
    })
    .await;
    let alice = [("x-forwarded-for", "203.0.113.1")];
    let bob = [("x-forwarded-for", "203.0.113.2")];
    let _alice = open(&app, HERE, &alice).await;

    assert_refused(&app, HERE, &alice).await;
    let _bob = open(&app, HERE, &bob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarding_header_from_a_peer_that_is_not_a_trusted_proxy_is_ignored() {
    let app = spawn_app_with(capped(1)).await;
    let _first = open(&app, HERE, &[("x-forwarded-for", "203.0.113.1")]).await;

    assert_refused(&app, HERE, &[("x-forwarded-for", "203.0.113.2")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_rest_rate_limit_is_per_forwarded_client() {
    let app = spawn_app_with(|s| {
        s.rate_limit = Toggle::On;
        s.http_rate_per_min = NonZeroU32::new(2).unwrap();
        behind_local_proxy(s);
    })
    .await;
    let get = |client: &'static str| {
        let request = app.http.get(app.url("/api/rooms"));
        async move {
            request
                .header("x-forwarded-for", client)
                .send()
                .await
                .unwrap()
                .status()
        }
    };

    assert_eq!(get("203.0.113.1").await, 200);
    assert_eq!(get("203.0.113.1").await, 200);
    assert_eq!(get("203.0.113.1").await, 429);
    assert_eq!(
        get("203.0.113.2").await,
        200,
        "another client behind the same proxy"
    );
}
