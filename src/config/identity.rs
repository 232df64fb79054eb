//! Identity settings: which key turns sign-in on, and what every token must carry.

use std::path::PathBuf;

use clap::Args;

use super::Secret;

/// Optional sign-in with JSON Web Tokens; with neither key set, anyone may use any name.
#[derive(Debug, Clone, Default, Args)]
pub struct IdentitySettings {
    /// HS256 secret (at least 32 bytes) that turns identity on
    #[arg(long, env = "CHAT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// PEM public key that turns identity on: RSA for RS256, EC P-256 for ES256
    #[arg(long, env = "CHAT_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// Required `iss` of every token (default: not checked)
    #[arg(long, env = "CHAT_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of every token (default: not checked)
    #[arg(long, env = "CHAT_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}
