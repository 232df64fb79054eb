//! Token verification with `jsonwebtoken` (pure-Rust crypto): one key, one algorithm, and the
//! claims this service relies on. The algorithm is fixed by the configured key, never taken
//! from the token, so `none` and algorithm switching are refused.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::{Identity, Refused};
use crate::config::IdentitySettings;
use crate::domain::Sender;

/// The clock skew allowed on `exp` and `nbf`, in seconds.
pub const CLOCK_SKEW_SECS: u64 = 5;
/// The shortest HS256 secret accepted: RFC 7518 asks for a key as long as the hash.
const MIN_SECRET_BYTES: usize = 32;
/// The role that may delete rooms.
const ADMIN_ROLE: &str = "admin";
const BOT_ROLE: &str = "bot";

/// Settings that cannot turn identity on, naming the one to change.
#[derive(Debug, thiserror::Error)]
pub enum IdentityConfigError {
    #[error("CHAT_JWT_SECRET and CHAT_JWT_PUBLIC_KEY_FILE are both set: set only one of them")]
    BothKeys,
    #[error("CHAT_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long; it has {0}")]
    ShortSecret(usize),
    #[error("CHAT_JWT_PUBLIC_KEY_FILE {path:?} cannot be read: {source}")]
    UnreadableKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "CHAT_JWT_PUBLIC_KEY_FILE {0:?} holds a private key: give the service the public key only"
    )]
    PrivateKey(PathBuf),
    #[error("CHAT_JWT_PUBLIC_KEY_FILE {0:?} is not a PEM RSA or EC (P-256) public key")]
    NotAPublicKey(PathBuf),
    #[error("{0} is set, but identity is off: set CHAT_JWT_SECRET or CHAT_JWT_PUBLIC_KEY_FILE too")]
    CheckWithoutKey(&'static str),
}

/// Verifies tokens against the configured key and checks.
pub struct Verifier {
    key: DecodingKey,
    algorithm: Algorithm,
    validation: Validation,
}

impl Verifier {
    /// The verifier the settings ask for; None when identity is off.
    pub fn from_settings(settings: &IdentitySettings) -> Result<Option<Self>, IdentityConfigError> {
        let (key, algorithm) = match (&settings.jwt_secret, &settings.jwt_public_key_file) {
            (Some(_), Some(_)) => return Err(IdentityConfigError::BothKeys),
            (Some(secret), None) => secret_key(secret.expose())?,
            (None, Some(path)) => public_key(path)?,
            (None, None) => return open_mode(settings),
        };
        let validation = validation(
            algorithm,
            settings.jwt_issuer.as_deref(),
            settings.jwt_audience.as_deref(),
        );
        Ok(Some(Self {
            key,
            algorithm,
            validation,
        }))
    }

    /// The identity a token names, once its signature and claims check out.
    pub fn verify(&self, token: Option<&str>) -> Result<Identity, Refused> {
        let token = token.ok_or(Refused::Missing)?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|error| self.refusal(&error))?;
        identity(&data.claims)
    }

    fn refusal(&self, error: &Error) -> Refused {
        match error.kind() {
            ErrorKind::InvalidSignature => Refused::BadSignature,
            ErrorKind::InvalidAlgorithm => Refused::WrongAlgorithm(self.algorithm_name()),
            ErrorKind::ExpiredSignature => Refused::Expired,
            ErrorKind::ImmatureSignature => Refused::NotYetValid,
            ErrorKind::InvalidIssuer => Refused::WrongIssuer,
            ErrorKind::InvalidAudience => Refused::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                "iss" => Refused::WrongIssuer,
                "aud" => Refused::WrongAudience,
                other => Refused::BadClaims(format!("{other} is required")),
            },
            ErrorKind::InvalidClaimFormat(claim) => {
                Refused::BadClaims(format!("{claim} must be a number of seconds"))
            }
            _ => Refused::Malformed("it is not a JWT signed with a supported algorithm"),
        }
    }

    fn algorithm_name(&self) -> &'static str {
        match self.algorithm {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            _ => "HS256",
        }
    }
}

fn open_mode(settings: &IdentitySettings) -> Result<Option<Verifier>, IdentityConfigError> {
    if settings.jwt_issuer.is_some() {
        return Err(IdentityConfigError::CheckWithoutKey("CHAT_JWT_ISSUER"));
    }
    if settings.jwt_audience.is_some() {
        return Err(IdentityConfigError::CheckWithoutKey("CHAT_JWT_AUDIENCE"));
    }
    Ok(None)
}

fn secret_key(secret: &str) -> Result<(DecodingKey, Algorithm), IdentityConfigError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(IdentityConfigError::ShortSecret(secret.len()));
    }
    Ok((
        DecodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS256,
    ))
}

/// An RSA key means RS256, an EC key ES256.
fn public_key(path: &Path) -> Result<(DecodingKey, Algorithm), IdentityConfigError> {
    let pem = std::fs::read(path).map_err(|source| IdentityConfigError::UnreadableKey {
        path: path.to_owned(),
        source,
    })?;
    // Verifying with a private key's numbers would refuse every token: say so at start.
    if String::from_utf8_lossy(&pem).contains("PRIVATE KEY") {
        return Err(IdentityConfigError::PrivateKey(path.to_owned()));
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((key, Algorithm::RS256));
    }
    DecodingKey::from_ec_pem(&pem)
        .map(|key| (key, Algorithm::ES256))
        .map_err(|_| IdentityConfigError::NotAPublicKey(path.to_owned()))
}

fn validation(algorithm: Algorithm, issuer: Option<&str>, audience: Option<&str>) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = CLOCK_SKEW_SECS;
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    if let Some(issuer) = issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        // An operator who names no audience accepts tokens whatever audience they carry.
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// The identity in verified claims: `sub` and `exp` are required, `name` and `roles` optional.
fn identity(claims: &Map<String, Value>) -> Result<Identity, Refused> {
    let subject = text_claim(claims, "sub")?
        .ok_or_else(|| Refused::BadClaims("sub is required".to_owned()))?;
    let (field, name) = match text_claim(claims, "name")? {
        Some(name) => ("name", name),
        None => ("sub", subject),
    };
    let name = Sender::parse(name).map_err(|_| {
        let max = Sender::MAX_CHARS;
        Refused::BadClaims(format!(
            "{field} must be 1 to {max} characters to be a name"
        ))
    })?;
    let roles = roles(claims)?;
    Ok(Identity {
        subject: subject.to_owned(),
        name,
        admin: roles.contains(&ADMIN_ROLE),
        bot: roles.contains(&BOT_ROLE),
        expires_at: expiry(claims)?,
    })
}

fn text_claim<'a>(claims: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, Refused> {
    match claims.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(Refused::BadClaims(format!("{field} must be a string"))),
    }
}

fn roles(claims: &Map<String, Value>) -> Result<Vec<&str>, Refused> {
    let not_strings = || Refused::BadClaims("roles must be an array of strings".to_owned());
    match claims.get("roles") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(roles)) => roles
            .iter()
            .map(|role| role.as_str().ok_or_else(not_strings))
            .collect(),
        Some(_) => Err(not_strings()),
    }
}

fn expiry(claims: &Map<String, Value>) -> Result<std::time::SystemTime, Refused> {
    claims
        .get("exp")
        .and_then(Value::as_f64)
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .and_then(|since_epoch| UNIX_EPOCH.checked_add(since_epoch))
        .ok_or_else(|| Refused::BadClaims("exp is out of range".to_owned()))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};
    use serde_json::json;

    use super::*;
    use crate::config::Secret;

    const SECRET: &str = "a-test-secret-that-is-32-bytes-!";
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/identity");
    /// `{"alg":"none","typ":"JWT"}`, base64url.
    const NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";

    fn settings(secret: Option<&str>, key_file: Option<&str>) -> IdentitySettings {
        IdentitySettings {
            jwt_secret: secret.map(|s| s.parse::<Secret>().unwrap()),
            jwt_public_key_file: key_file.map(|name| format!("{FIXTURES}/{name}").into()),
            jwt_issuer: None,
            jwt_audience: None,
        }
    }

    fn hs256(configure: impl FnOnce(&mut IdentitySettings)) -> Verifier {
        let mut settings = settings(Some(SECRET), None);
        configure(&mut settings);
        Verifier::from_settings(&settings).unwrap().unwrap()
    }

    fn now() -> i64 {
        get_current_timestamp() as i64
    }

    fn signed(header: Header, claims: serde_json::Value, key: &EncodingKey) -> String {
        encode(&header, &claims, key).unwrap()
    }

    fn hs(claims: serde_json::Value) -> String {
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        signed(Header::default(), claims, &key)
    }

    fn alice() -> serde_json::Value {
        json!({"sub": "u-1", "name": "alice", "exp": now() + 60})
    }

    fn pem(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
    }

    #[test]
    fn a_valid_token_names_its_identity() {
        let verifier = hs256(|_| {});
        let claims =
            json!({"sub": "u-1", "name": " alice ", "exp": now() + 60, "roles": ["admin", "bot"]});
        let identity = verifier.verify(Some(&hs(claims))).unwrap();
        assert_eq!(identity.subject(), "u-1");
        assert_eq!(identity.name().as_str(), "alice");
        assert!(identity.is_admin() && identity.is_bot());
        let without_name = verifier
            .verify(Some(&hs(
                json!({"sub": "bob", "exp": now() + 60, "roles": ["reader"]}),
            )))
            .unwrap();
        assert_eq!(
            without_name.name().as_str(),
            "bob",
            "the name falls back to sub"
        );
        assert!(!without_name.is_admin() && !without_name.is_bot());
    }

    #[test]
    fn no_token_and_unreadable_tokens_are_refused() {
        let verifier = hs256(|_| {});
        assert_eq!(verifier.verify(None), Err(Refused::Missing));
        for token in ["", "abc", "a.b.c", "eyJ.eyJ.sig"] {
            assert_eq!(
                verifier.verify(Some(token)).unwrap_err().reason(),
                "malformed",
                "{token}"
            );
        }
    }

    #[test]
    fn a_forged_token_is_refused() {
        let forged = signed(
            Header::default(),
            alice(),
            &EncodingKey::from_secret(&[7; 32]),
        );
        assert_eq!(
            hs256(|_| {}).verify(Some(&forged)),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn only_the_configured_algorithm_is_accepted() {
        let verifier = hs256(|_| {});
        let hs384 = signed(
            Header::new(Algorithm::HS384),
            alice(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        );
        assert_eq!(
            verifier.verify(Some(&hs384)),
            Err(Refused::WrongAlgorithm("HS256"))
        );
        let rs256 = signed(
            Header::new(Algorithm::RS256),
            alice(),
            &EncodingKey::from_rsa_pem(&pem("rsa-private.pem")).unwrap(),
        );
        assert_eq!(
            verifier.verify(Some(&rs256)),
            Err(Refused::WrongAlgorithm("HS256"))
        );
        let payload = hs(alice()).split('.').nth(1).unwrap().to_owned();
        let unsigned = format!("{NONE_HEADER}.{payload}.");
        assert!(verifier.verify(Some(&unsigned)).is_err(), "alg none");
    }

    #[test]
    fn exp_and_nbf_allow_five_seconds_of_skew_and_no_more() {
        let verifier = hs256(|_| {});
        let at =
            |exp: i64, nbf: i64| hs(json!({"sub": "u", "exp": now() + exp, "nbf": now() + nbf}));
        assert!(verifier.verify(Some(&at(-3, 0))).is_ok());
        assert_eq!(verifier.verify(Some(&at(-8, -60))), Err(Refused::Expired));
        assert!(verifier.verify(Some(&at(60, 3))).is_ok());
        assert_eq!(verifier.verify(Some(&at(60, 8))), Err(Refused::NotYetValid));
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let verifier = hs256(|s| {
            s.jwt_issuer = Some("https://id.example".into());
            s.jwt_audience = Some("chat".into());
        });
        let with = |iss: Option<&str>, aud: Option<&str>| {
            let mut claims = alice();
            if let Some(iss) = iss {
                claims["iss"] = json!(iss);
            }
            if let Some(aud) = aud {
                claims["aud"] = json!(aud);
            }
            verifier.verify(Some(&hs(claims)))
        };
        assert!(with(Some("https://id.example"), Some("chat")).is_ok());
        assert_eq!(
            with(Some("https://evil.example"), Some("chat")),
            Err(Refused::WrongIssuer)
        );
        assert_eq!(with(None, Some("chat")), Err(Refused::WrongIssuer));
        assert_eq!(
            with(Some("https://id.example"), Some("mail")),
            Err(Refused::WrongAudience)
        );
        assert_eq!(
            with(Some("https://id.example"), None),
            Err(Refused::WrongAudience)
        );
        let unchecked = hs256(|_| {});
        let mut claims = alice();
        claims["aud"] = json!("anything");
        assert!(
            unchecked.verify(Some(&hs(claims))).is_ok(),
            "no audience configured"
        );
    }

    #[test]
    fn claims_of_the_wrong_shape_are_refused_by_name() {
        let verifier = hs256(|_| {});
        let refused = |claims: serde_json::Value| verifier.verify(Some(&hs(claims))).unwrap_err();
        let exp = now() + 60;
        for (claims, field) in [
            (json!({"exp": exp}), "sub"),
            (json!({"sub": 7, "exp": exp}), "sub"),
            (json!({"sub": "u", "exp": exp, "roles": "admin"}), "roles"),
            (json!({"sub": "u", "exp": exp, "roles": [1]}), "roles"),
            (json!({"sub": "u", "exp": exp, "name": 3}), "name"),
            (json!({"sub": "u", "exp": exp, "name": " "}), "name"),
            (
                json!({"sub": "u", "exp": exp, "name": "n".repeat(65)}),
                "name",
            ),
            (json!({"sub": "s".repeat(65), "exp": exp}), "sub"),
            (json!({"sub": "u"}), "exp"),
            (json!({"sub": "u", "exp": "soon"}), "exp"),
        ] {
            let refusal = refused(claims.clone());
            assert_eq!(refusal.reason(), "bad_claims", "{claims}");
            assert!(refusal.to_string().contains(field), "{claims}: {refusal}");
        }
    }

    #[test]
    fn rsa_and_ec_public_keys_select_rs256_and_es256() {
        for (public, private, algorithm) in [
            ("rsa-public.pem", "rsa-private.pem", Algorithm::RS256),
            ("ec-public.pem", "ec-private.pem", Algorithm::ES256),
        ] {
            let verifier = Verifier::from_settings(&settings(None, Some(public)))
                .unwrap()
                .unwrap();
            let key = match algorithm {
                Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem(private)),
                _ => EncodingKey::from_ec_pem(&pem(private)),
            };
            let token = signed(Header::new(algorithm), alice(), &key.unwrap());
            assert_eq!(
                verifier.verify(Some(&token)).unwrap().name().as_str(),
                "alice"
            );
            assert!(
                verifier.verify(Some(&hs(alice()))).is_err(),
                "{public}: HS256 refused"
            );
        }
    }

    #[test]
    fn settings_that_cannot_work_are_refused_naming_the_setting() {
        let refusal = |settings: IdentitySettings| {
            Verifier::from_settings(&settings)
                .err()
                .unwrap()
                .to_string()
        };
        let both = refusal(settings(Some(SECRET), Some("rsa-public.pem")));
        assert!(both.contains("CHAT_JWT_SECRET") && both.contains("CHAT_JWT_PUBLIC_KEY_FILE"));
        let short = refusal(settings(Some(&SECRET[..31]), None));
        assert!(
            short.contains("CHAT_JWT_SECRET") && short.contains("31"),
            "{short}"
        );
        for file in ["no-such-file.pem", "rsa-private.pem", "README.md"] {
            let error = refusal(settings(None, Some(file)));
            assert!(error.contains("CHAT_JWT_PUBLIC_KEY_FILE"), "{error}");
        }
        let mut issuer_alone = settings(None, None);
        issuer_alone.jwt_issuer = Some("x".into());
        assert!(refusal(issuer_alone).contains("CHAT_JWT_ISSUER"));
        assert!(
            Verifier::from_settings(&settings(None, None))
                .unwrap()
                .is_none()
        );
    }
}
