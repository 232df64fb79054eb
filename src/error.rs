//! ApiError: every way a REST request can fail, mapped once to an RFC 9457 problem document.
//! 5xx details are logged here and never sent.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{RoomId, Seq, WebhookId};
use crate::identity::Refused;
use crate::store::StoreError;
use crate::writer::{AppendError, WriteError};

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed JSON, a bad field or query value, a room id that is not a UUID.
    #[error("{0}")]
    InvalidRequest(String),
    /// 401: identity is on and the request carries no valid token.
    #[error("{0}")]
    Unauthorized(Refused),
    /// 403: the caller may not do this (the detail says who may).
    #[error("{0}")]
    Forbidden(String),
    /// 403: identity mode, a `sender` that is not the identity's name.
    #[error("this request is signed in as {0:?}: sender must be that name (or left out)")]
    SenderMismatch(String),
    /// 403: a name banned from the room.
    #[error("you are banned from room {0}")]
    Banned(RoomId),
    /// 403: a name muted in the room.
    #[error("you are muted in room {0}: you may read, not talk")]
    Muted(RoomId),
    /// 400: a message over the limit.
    #[error("message must be at most {0} characters")]
    MessageTooLong(usize),
    /// 400: a `replyTo` (or `targetSeq`) naming no TALK of the room that is not deleted.
    #[error("no message at seq {0} in this room (or it was deleted)")]
    TargetNotFound(Seq),
    /// 404: the room does not exist (or was deleted).
    #[error("room {0} does not exist")]
    RoomNotFound(RoomId),
    /// 404: no webhook has this id (or it was deleted).
    #[error("webhook {0} does not exist")]
    WebhookNotFound(WebhookId),
    /// 409: a revoke or grant that would leave a room without an owner.
    #[error("the room must keep at least one owner")]
    LastOwner,
    /// 404: no route matches the path.
    #[error("no resource at {0}")]
    NoRoute(String),
    /// 405: the path exists but not with this method; `allowed` goes in the `Allow` header.
    #[error("method {method} is not allowed here; use {allowed}")]
    MethodNotAllowed {
        method: String,
        allowed: &'static str,
    },
    /// 413: the body is over the configured limit.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: the body is not `application/json`.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// 429: this address sent too many requests; retry after the given seconds.
    #[error("too many requests; retry in {0} s")]
    RateLimited(u64),
    /// 429: this address holds as many WebSocket connections as it may; close one first.
    #[error("this address already holds {0} WebSocket connections; close one first")]
    TooManyConnections(usize),
    /// 503: storage unreachable, or the service is shutting down.
    #[error("the service is temporarily unavailable; retry shortly")]
    Unavailable,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "INVALID_REQUEST",
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::SenderMismatch(_) => "SENDER_MISMATCH",
            Self::Banned(_) => "BANNED",
            Self::Muted(_) => "MUTED",
            Self::MessageTooLong(_) => "MESSAGE_TOO_LONG",
            Self::TargetNotFound(_) => "TARGET_NOT_FOUND",
            Self::RoomNotFound(_) => "ROOM_NOT_FOUND",
            Self::NoRoute(_) => "NOT_FOUND",
            Self::WebhookNotFound(_) => "WEBHOOK_NOT_FOUND",
            Self::LastOwner => "LAST_OWNER",
            Self::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::RateLimited(_) | Self::TooManyConnections(_) => "RATE_LIMITED",
            Self::Unavailable => "UNAVAILABLE",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "storage failed");
        Self::Unavailable
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Unavailable => Self::Unavailable,
        }
    }
}

/// Why a moderation action was not stored, as the caller is told (a `NO_CHANGE` is no
/// failure: whoever asks for it is answered with the state as it is).
impl From<AppendError> for ApiError {
    fn from(refused: AppendError) -> Self {
        match refused {
            AppendError::RoomNotFound(room_id) => Self::RoomNotFound(room_id),
            AppendError::Forbidden(why) => Self::Forbidden(why.to_owned()),
            AppendError::LastOwner => Self::LastOwner,
            AppendError::TargetNotFound(seq) => Self::TargetNotFound(seq),
            AppendError::Banned(room_id) => Self::Banned(room_id),
            AppendError::Unavailable => Self::Unavailable,
            other => Self::InvalidRequest(other.to_string()),
        }
    }
}

/// An RFC 9457 problem document, with the machine-readable `code` this service adds.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub kind: String,
    #[schema(example = "Not Found")]
    pub title: String,
    #[schema(example = 404)]
    pub status: u16,
    #[schema(example = "room 3f2c5a8e-8d2b-4a63-9a43-3c0c8a1d2e4f does not exist")]
    pub detail: String,
    #[schema(example = "ROOM_NOT_FOUND")]
    pub code: String,
}

/// Carried in the response so the error-counting middleware can label by code.
#[derive(Debug, Clone, Copy)]
pub struct ProblemCode(pub &'static str);

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) | Self::MessageTooLong(_) | Self::TargetNotFound(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::SenderMismatch(_) | Self::Banned(_) | Self::Muted(_) => {
                StatusCode::FORBIDDEN
            }
            Self::RoomNotFound(_) | Self::NoRoute(_) | Self::WebhookNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            Self::LastOwner => StatusCode::CONFLICT,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited(_) | Self::TooManyConnections(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let problem = Problem {
            kind: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: self.code().to_owned(),
        };
        let mut response = HttpResponse::build(status);
        response.content_type(PROBLEM_JSON);
        match self {
            Self::RateLimited(seconds) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(*seconds)));
            }
            Self::MethodNotAllowed { allowed, .. } => {
                response.insert_header((header::ALLOW, HeaderValue::from_static(allowed)));
            }
            Self::Unauthorized(refused) => {
                let challenge = HeaderValue::from_static(refused.challenge());
                response.insert_header((header::WWW_AUTHENTICATE, challenge));
            }
            _ => {}
        }
        let mut response = response.json(problem);
        response.extensions_mut().insert(ProblemCode(self.code()));
        response
    }
}

/// Maps a JSON body that could not be read to 400, 413 or 415.
pub fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let api = match error {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge(limit),
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(error) => {
            ApiError::InvalidRequest(format!("invalid JSON body: {error}"))
        }
        other => ApiError::InvalidRequest(format!("could not read the request body: {other}")),
    };
    api.into()
}

/// Maps a query string that does not fit its parameters to 400.
pub fn query_error(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    let detail = match error {
        QueryPayloadError::Deserialize(error) => format!("invalid query: {error}"),
        other => format!("invalid query: {other}"),
    };
    ApiError::InvalidRequest(detail).into()
}

/// Maps a path segment that does not fit its parameter to 400.
pub fn path_error(error: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::InvalidRequest(format!("invalid path: {error}")).into()
}
