//! Optional sign-in: the service verifies JSON Web Tokens issued elsewhere (it never issues them
//! nor stores passwords), binds each connection to the identity a token names, and gives the
//! `admin` role the right to delete rooms. Off unless `CHAT_JWT_SECRET` or
//! `CHAT_JWT_PUBLIC_KEY_FILE` is set; then every `/api/` request and every WebSocket needs a
//! valid token, and a session may speak only under its identity's name.

mod token;
mod verifier;

use std::time::SystemTime;

use crate::domain::{Authority, Role, Sender};

pub use token::{bearer, upgrade_token};
pub use verifier::{IdentityConfigError, Verifier};

/// Who a verified token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    subject: String,
    name: Sender,
    admin: bool,
    /// Its token's `roles` include `bot`: its events say `"bot": true`.
    bot: bool,
    expires_at: SystemTime,
}

impl Identity {
    /// The token's `sub`: what per-identity limits count by.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The only `sender` this identity may use: its `name` claim, else its `sub`.
    pub fn name(&self) -> &Sender {
        &self.name
    }

    pub fn is_admin(&self) -> bool {
        self.admin
    }

    pub fn is_bot(&self) -> bool {
        self.bot
    }

    /// When the token stops being valid: a session signed in with it is closed then.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

/// Who made a request, as the `/api/` guard found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Identity is off: anyone may do anything, as in the seeds.
    Anyone,
    Signed(Identity),
}

impl Caller {
    /// The signed-in name; None when identity is off.
    pub fn name(&self) -> Option<&Sender> {
        match self {
            Self::Anyone => None,
            Self::Signed(identity) => Some(identity.name()),
        }
    }

    /// Whether the caller is a bot: its events say so.
    pub fn is_bot(&self) -> bool {
        matches!(self, Self::Signed(identity) if identity.is_bot())
    }

    /// How the rooms' rules see the caller.
    pub fn authority(&self) -> Authority {
        match self {
            Self::Anyone => Authority::Anyone,
            Self::Signed(identity) if identity.is_admin() => Authority::Admin,
            Self::Signed(_) => Authority::Signed,
        }
    }

    /// Whose view of the rooms private ones hide from: a signed-in name that is no `admin`
    /// (None: it sees every room).
    pub fn viewer(&self) -> Option<&str> {
        match self {
            Self::Signed(identity) if !identity.is_admin() => Some(identity.name().as_str()),
            _ => None,
        }
    }

    /// Whether it may change a room (delete it, set its retention) where it holds `role`:
    /// anyone with identity off, else an `admin` or the room's owner.
    pub fn may_manage(&self, role: Option<Role>) -> bool {
        match self.authority() {
            Authority::Anyone | Authority::Admin => true,
            Authority::Signed => role == Some(Role::Owner),
        }
    }
}

/// Why a request or an upgrade was not let in. The text goes to the client: it never repeats
/// the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("a bearer token is required: send Authorization: Bearer <token>")]
    Missing,
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token is not signed with {0}, the only algorithm accepted")]
    WrongAlgorithm(&'static str),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token's claims are invalid: {0}")]
    BadClaims(String),
}

impl Refused {
    /// The label under which `/metrics` counts refusals.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed(_) => "malformed",
            Self::BadSignature => "bad_signature",
            Self::WrongAlgorithm(_) => "wrong_algorithm",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::BadClaims(_) => "bad_claims",
        }
    }

    /// RFC 6750's `WWW-Authenticate` challenge: the scheme, and the kind of error once a
    /// token was sent (the problem's `detail` says why in words).
    pub fn challenge(&self) -> &'static str {
        match self {
            Self::Missing => r#"Bearer realm="chat""#,
            Self::Malformed(_) => r#"Bearer realm="chat", error="invalid_request""#,
            _ => r#"Bearer realm="chat", error="invalid_token""#,
        }
    }
}
