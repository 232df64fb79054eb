//! `/api/webhooks`: an `admin`'s webhooks (identity mode). Creating one draws its secret,
//! shown in that answer only and stored sealed; reading one shows how far its delivery got in
//! each room and why it is behind.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{
    Authority, EventFilter, EventKind, RoomId, Seq, Timestamp, WebhookId, WebhookUrl,
};
use crate::error::{ApiError, Problem};
use crate::identity::Caller;
use crate::state::AppState;
use crate::store::{RoomPosition, WebhookRecord};
use crate::webhooks::{Sealer, address};

/// A webhook to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where events are posted: `http` or `https`, at most 2,048 characters; loopback and
    /// private addresses are refused unless `CHAT_WEBHOOK_ALLOW_PRIVATE=true`.
    #[schema(example = "https://bots.example.com/chat")]
    pub url: String,
    /// 1 to 1,000 room ids (absent: every room, those created later too).
    pub rooms: Option<Vec<String>>,
    /// Event types to send (absent: every type).
    #[schema(example = json!(["TALK"]))]
    pub types: Option<Vec<String>>,
}

/// A webhook; `secret` only in the answer that created it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub webhook_id: WebhookId,
    pub url: String,
    /// Absent or null: every room.
    pub rooms: Option<Vec<RoomId>>,
    /// Absent or null: every event type.
    #[schema(value_type = Option<Vec<String>>)]
    pub types: Option<Vec<EventKind>>,
    /// `whsec_` and the base64 of the signing key (Standard Webhooks); shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", nullable = false)]
    pub secret: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Only when one webhook is read: its delivery in each room it has a position in.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub positions: Option<Vec<Position>>,
}

/// How far a webhook's delivery got in one room.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub room_id: RoomId,
    /// The last event sent (or passed over for its type).
    #[schema(value_type = i64, minimum = 0)]
    pub delivered_seq: Seq,
    /// The room's newest event: `lastSeq - deliveredSeq` events are still to go.
    #[schema(value_type = i64, minimum = 0)]
    pub last_seq: Seq,
    /// Why the next event has not gone yet (null: it is not failing).
    pub last_error: Option<String>,
    /// Since when it keeps failing (null: it is not).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub failing_since: Option<Timestamp>,
}

/// The webhooks.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<Webhook>,
}

impl Webhook {
    fn of(record: WebhookRecord) -> Self {
        Self {
            webhook_id: record.webhook_id,
            url: record.url,
            rooms: record.filter.rooms,
            types: record.filter.types,
            secret: None,
            created_at: record.created_at,
            positions: None,
        }
    }
}

impl From<RoomPosition> for Position {
    fn from(position: RoomPosition) -> Self {
        Self {
            room_id: position.room_id,
            delivered_seq: position.delivered_seq,
            last_seq: position.last_seq,
            last_error: position.last_error,
            failing_since: position.failing_since,
        }
    }
}

/// The sealer, for an `admin` in identity mode; `403 FORBIDDEN` otherwise.
fn admin<'a>(state: &'a AppState, caller: &Caller) -> Result<&'a Sealer, ApiError> {
    if state.identity.is_none() {
        return Err(ApiError::Forbidden(
            "webhooks need identity mode (CHAT_JWT_SECRET or CHAT_JWT_PUBLIC_KEY_FILE)".to_owned(),
        ));
    }
    if caller.authority() != Authority::Admin {
        return Err(ApiError::Forbidden(
            "only an admin manages webhooks".to_owned(),
        ));
    }
    state.sealer.as_deref().ok_or_else(|| {
        ApiError::Forbidden("webhooks need a key: set CHAT_WEBHOOK_KEY (32 bytes or more)".into())
    })
}

fn webhook_id(raw: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(raw)
        .map_err(|_| ApiError::InvalidRequest(format!("webhook id {raw:?} is not a UUID")))
}

/// The URL and filter asked for, checked: a usable address, rooms that exist.
async fn checked(
    state: &AppState,
    body: &NewWebhook,
) -> Result<(WebhookUrl, EventFilter), ApiError> {
    let invalid = |error: &dyn std::fmt::Display| ApiError::InvalidRequest(error.to_string());
    let url = WebhookUrl::parse(&body.url).map_err(|error| invalid(&error))?;
    let filter = EventFilter::parse(body.rooms.as_deref(), body.types.as_deref())
        .map_err(|error| invalid(&error))?;
    address::check(&url, state.settings.webhooks.webhook_allow_private)
        .await
        .map_err(|error| invalid(&error))?;
    if let Some(rooms) = &filter.rooms {
        let found = state.store.last_seqs(rooms).await?;
        if let Some(missing) = rooms.iter().find(|room| !found.contains_key(room)) {
            return Err(ApiError::InvalidRequest(format!(
                "rooms: room {missing} does not exist"
            )));
        }
    }
    Ok((url, filter))
}

/// Create a webhook: every event of its rooms and types stored from now on is posted to it.
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks", request_body = NewWebhook,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the secret is shown here only", body = Webhook),
        (status = 400, description = "Bad JSON, url (or one reaching a private address), rooms or types", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, identity off, or no webhook key", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable: nothing was created", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<NewWebhook>,
) -> Result<HttpResponse, ApiError> {
    let sealer = admin(&state, &caller)?;
    let (url, filter) = checked(&state, &body).await?;
    let webhook_id = WebhookId::random();
    let secret = sealer.generate(webhook_id).map_err(|error| {
        tracing::error!(%error, "no webhook secret");
        ApiError::Unavailable
    })?;
    let record = WebhookRecord {
        webhook_id,
        url: url.as_str().to_owned(),
        filter,
        sealed_secret: secret.sealed,
        created_at: Timestamp::now(),
    };
    state.webhooks.store.create_webhook(&record).await?;
    let mut webhook = Webhook::of(record);
    webhook.secret = Some(secret.shown);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/webhooks/{webhook_id}")))
        .json(webhook))
}

/// List the webhooks (without secrets or positions).
#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every webhook, oldest first", body = WebhookList),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or identity off", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    admin(&state, &caller)?;
    let items = state.webhooks.store.webhooks().await?;
    let items = items.into_iter().map(Webhook::of).collect();
    Ok(HttpResponse::Ok().json(WebhookList { items }))
}

/// Read a webhook, with its delivery in each room: how far, and why it is behind.
#[utoipa::path(get, path = "/api/webhooks/{webhookId}", tag = "webhooks",
    params(("webhookId" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses(
        (status = 200, description = "The webhook and its positions", body = Webhook),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or identity off", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "WEBHOOK_NOT_FOUND", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin(&state, &caller)?;
    let id = webhook_id(&path)?;
    let record = state.webhooks.store.webhook(id).await?;
    let mut webhook = Webhook::of(record.ok_or(ApiError::WebhookNotFound(id))?);
    let positions = state.webhooks.store.positions(id).await?;
    webhook.positions = Some(positions.into_iter().map(Position::from).collect());
    Ok(HttpResponse::Ok().json(webhook))
}

/// Delete a webhook: nothing more is sent to it (a delivery in flight may still arrive).
#[utoipa::path(delete, path = "/api/webhooks/{webhookId}", tag = "webhooks",
    params(("webhookId" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or identity off", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "WEBHOOK_NOT_FOUND", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin(&state, &caller)?;
    let id = webhook_id(&path)?;
    match state.webhooks.store.delete_webhook(id).await? {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(ApiError::WebhookNotFound(id)),
    }
}
