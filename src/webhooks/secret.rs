//! Webhook secrets: drawn at random, shown once as `whsec_<base64>`, stored sealed with a key
//! from the environment (ChaCha20-Poly1305, bound to the webhook's id), and used to sign each
//! delivery as the Standard Webhooks specification says.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};

use crate::config::Settings;
use crate::domain::WebhookId;

/// Random bytes in a secret (the specification allows 24 to 64).
const SECRET_BYTES: usize = 32;
const PREFIX: &str = "whsec_";
/// The shortest key the environment may give.
pub const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("CHAT_WEBHOOK_KEY must be at least 32 bytes")]
    ShortKey,
    #[error("the system's random source failed")]
    Random,
    #[error("a stored webhook secret does not open with this server's webhook key")]
    Unsealable,
}

/// A webhook's signing key: the secret's decoded bytes.
#[derive(Clone)]
pub struct SigningKey(hmac::Key);

impl SigningKey {
    /// `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(id.as_bytes());
        context.update(format!(".{timestamp}.").as_bytes());
        context.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(context.sign()))
    }
}

/// A new secret, as it is shown once (`whsec_` and base64) and as it is sealed.
pub struct NewSecret {
    pub shown: String,
    pub sealed: Vec<u8>,
}

/// Seals and opens secrets with the server's webhook key.
pub struct Sealer {
    key: LessSafeKey,
    random: SystemRandom,
}

impl Sealer {
    /// The key from `CHAT_WEBHOOK_KEY`, else derived from `CHAT_JWT_SECRET` (its own HKDF
    /// label, so the one never reveals the other); None when neither is set.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, SecretError> {
        let (material, label): (&[u8], &[u8]) = match (
            &settings.webhooks.webhook_key,
            &settings.identity.jwt_secret,
        ) {
            (Some(key), _) => (key.expose().as_bytes(), b"chat webhook key"),
            (None, Some(jwt)) => (jwt.expose().as_bytes(), b"chat webhook key from jwt secret"),
            (None, None) => return Ok(None),
        };
        if material.len() < MIN_KEY_BYTES {
            return Err(SecretError::ShortKey);
        }
        Self::new(material, label).map(Some)
    }

    fn new(material: &[u8], label: &[u8]) -> Result<Self, SecretError> {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, label);
        let info = [b"seal".as_slice()];
        let prk = salt.extract(material);
        let okm = prk
            .expand(&info, &CHACHA20_POLY1305)
            .map_err(|_| SecretError::ShortKey)?;
        Ok(Self {
            key: LessSafeKey::new(UnboundKey::from(okm)),
            random: SystemRandom::new(),
        })
    }

    /// A fresh secret for `id`.
    pub fn generate(&self, id: WebhookId) -> Result<NewSecret, SecretError> {
        let mut bytes = [0u8; SECRET_BYTES];
        self.random
            .fill(&mut bytes)
            .map_err(|_| SecretError::Random)?;
        Ok(NewSecret {
            shown: format!("{PREFIX}{}", STANDARD.encode(bytes)),
            sealed: self.seal(id, &bytes)?,
        })
    }

    fn seal(&self, id: WebhookId, secret: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| SecretError::Random)?;
        let mut sealed = secret.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.uuid().as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SecretError::Random)?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        Ok(stored)
    }

    /// The signing key sealed for `id`.
    pub fn open(&self, id: WebhookId, stored: &[u8]) -> Result<SigningKey, SecretError> {
        let (nonce, sealed) = stored
            .split_at_checked(NONCE_LEN)
            .ok_or(SecretError::Unsealable)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Unsealable)?;
        let mut sealed = sealed.to_vec();
        let secret = self
            .key
            .open_in_place(nonce, Aad::from(id.uuid().as_bytes()), &mut sealed)
            .map_err(|_| SecretError::Unsealable)?;
        Ok(SigningKey(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(material: &[u8]) -> Sealer {
        Sealer::new(material, b"test").unwrap()
    }

    #[test]
    fn a_secret_opens_only_with_its_key_and_its_webhook() {
        let sealer = sealer(&[7; 32]);
        let id = WebhookId::random();
        let secret = sealer.generate(id).unwrap();
        assert!(secret.shown.starts_with(PREFIX));
        let raw = STANDARD.decode(&secret.shown[PREFIX.len()..]).unwrap();
        assert_eq!(raw.len(), SECRET_BYTES);
        assert!(!secret.sealed.windows(raw.len()).any(|window| window == raw));

        let key = sealer.open(id, &secret.sealed).unwrap();
        let expected = hmac::Key::new(hmac::HMAC_SHA256, &raw);
        let tag = hmac::sign(&expected, b"msg_1.1700000000.{}");
        assert_eq!(
            key.sign("msg_1", 1_700_000_000, "{}"),
            format!("v1,{}", STANDARD.encode(tag))
        );
        assert!(sealer.open(WebhookId::random(), &secret.sealed).is_err());
        assert!(self::sealer(&[8; 32]).open(id, &secret.sealed).is_err());
        assert!(sealer.open(id, &secret.sealed[..10]).is_err());
    }

    #[test]
    fn the_key_comes_from_chat_webhook_key_else_the_jwt_secret_and_is_never_short() {
        let mut settings = crate::config::Settings::from_env().unwrap();
        settings.identity.jwt_secret = None;
        settings.webhooks.webhook_key = None;
        assert!(matches!(Sealer::from_settings(&settings), Ok(None)));
        settings.identity.jwt_secret = Some("j".repeat(32).parse().unwrap());
        let from_jwt = Sealer::from_settings(&settings).unwrap().unwrap();
        settings.webhooks.webhook_key = Some("k".repeat(32).parse().unwrap());
        let from_key = Sealer::from_settings(&settings).unwrap().unwrap();
        let id = WebhookId::random();
        let sealed = from_key.generate(id).unwrap().sealed;
        assert!(from_key.open(id, &sealed).is_ok());
        assert!(from_jwt.open(id, &sealed).is_err(), "two keys, not one");
        settings.webhooks.webhook_key = Some("k".repeat(31).parse().unwrap());
        assert!(matches!(
            Sealer::from_settings(&settings),
            Err(SecretError::ShortKey)
        ));
    }

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signatures_match_the_specifications_example() {
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let key = SigningKey(hmac::Key::new(hmac::HMAC_SHA256, &secret));
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
