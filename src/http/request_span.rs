//! The span each HTTP request is logged under (and every session under it). tracing-actix-web's
//! default records the whole target, query string included, which on `/ws/chat` can carry an
//! `access_token`, and a client address read from headers anyone can write. This one leaves
//! out any query that carries a token, and records the address the limits count by.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage, web};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

use crate::state::AppState;
use crate::telemetry::loggable_target;

pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        let client = request
            .app_data::<web::Data<AppState>>()
            .and_then(|state| state.client_ip(request.peer_addr(), request.headers()));
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = request.match_pattern().unwrap_or_default(),
            http.target = %loggable_target(request.uri()),
            http.client_ip = client.map(tracing::field::display),
            request_id = request_id.map(tracing::field::display),
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
