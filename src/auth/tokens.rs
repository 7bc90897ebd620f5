//! Access tokens (short-lived HS256 JWTs naming a session) and opaque random secrets
//! (refresh and bot tokens) that are stored only as SHA-256 hashes.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::policy::Role;
use crate::error::{ApiError, ApiResult, OrInternal};

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id, as a string (RFC 7519 `sub` is a string).
    pub sub: String,
    pub role: Role,
    /// The session this token belongs to; revoking it revokes the token.
    pub sid: i64,
    pub iat: i64,
    pub exp: i64,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        // Only HS256: a token claiming `none` or another algorithm is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)
    }

    pub fn issue(&self, user_id: i64, role: Role, session_id: i64) -> ApiResult<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id.to_string(),
            role,
            sid: session_id,
            iat: now,
            exp: now + self.ttl_secs(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).or_internal()
    }

    /// The claims of a valid, unexpired token signed with our secret.
    pub fn verify(&self, token: &str) -> ApiResult<(i64, AccessClaims)> {
        let data = decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| ApiError::Unauthorized(format!("the access token is not valid ({e})")))?;
        let user_id = data
            .claims
            .sub
            .parse()
            .map_err(|_| ApiError::Unauthorized("the access token is not valid".to_owned()))?;
        Ok((user_id, data.claims))
    }
}

/// A new random secret: 32 bytes, URL-safe base64.
pub fn random_secret(prefix: &str) -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// How a secret is stored: its SHA-256, hex. The secret itself has 256 bits of entropy,
/// so a fast hash is enough and lookups stay indexable.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
