//! The listener and the HTTP server on it: the API, the page and the docs through actix-web,
//! and WebSocket upgrades through [`ws::upgrade`].

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::time::Duration;

use actix_http::HttpService;
use actix_server::Server;
use actix_service::{IntoServiceFactory, ServiceFactoryExt, map_config};
use actix_web::dev::AppConfig;
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use tokio::net::TcpSocket;
use tracing_actix_web::TracingLogger;

use crate::error;
use crate::http::request_span::RequestSpan;
use crate::http::{self, middleware};
use crate::state::AppState;
use crate::ws;

/// How long a connection may take to close after its response is done.
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections that may wait to be accepted (the kernel caps it at net.core.somaxconn): when
/// thousands of clients reconnect at once after a restart, std's 128 overflows, and each
/// connection whose SYN was dropped waits a second (then three) for its retransmission.
const ACCEPT_BACKLOG: u32 = 4096;

/// Listens on the first of the addresses `addr` names that can be bound.
pub(super) fn bind(addr: &str) -> io::Result<TcpListener> {
    let mut refused = None;
    for addr in addr.to_socket_addrs()? {
        match bind_one(addr) {
            Ok(listener) => return Ok(listener),
            Err(error) => refused = Some(error),
        }
    }
    Err(refused.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
}

/// As std's `TcpListener::bind` (SO_REUSEADDR on), with a backlog of [`ACCEPT_BACKLOG`]
/// instead of its 128.
fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)?.into_std()
}

/// Serves HTTP on the listener: the API, the page and the docs through actix-web, and
/// WebSocket upgrades through [`ws::upgrade`], which takes their connections over.
pub(super) fn serve(listener: TcpListener, state: web::Data<AppState>) -> io::Result<Server> {
    let settings = &state.settings;
    let json = web::JsonConfig::default()
        .limit(settings.max_body_bytes)
        .error_handler(error::json_error);
    let query = web::QueryConfig::default().error_handler(error::query_error);
    let path = web::PathConfig::default().error_handler(error::path_error);
    let addr = listener.local_addr()?;
    let server = actix_server::Server::build()
        .disable_signals()
        .workers(settings.workers())
        .listen("chat", listener, move || {
            let app = App::new()
                .app_data(state.clone())
                .app_data(json.clone())
                .app_data(query.clone())
                .app_data(path.clone())
                .wrap(from_fn(middleware::count_errors))
                .wrap(from_fn(middleware::track))
                .wrap(TracingLogger::<RequestSpan>::new())
                .configure(http::routes)
                .default_service(web::to(http::not_found))
                .into_factory()
                .map_err(|error| error.error_response());
            HttpService::build()
                // Sessions batch what they write themselves; Nagle would only hold it back.
                .tcp_nodelay(true)
                .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
                .local_addr(addr)
                .upgrade(ws::upgrade::service(state.clone().into_inner()))
                .finish(map_config(app, |_| AppConfig::default()))
                .tcp()
        })?;
    Ok(server.run())
}
