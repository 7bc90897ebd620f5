//! bcrypt on a bounded pool sized to the cores, so a burst of logins cannot starve other
//! requests (see `crate::blocking`).

use std::borrow::Cow;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::blocking::BoundedPool;
use crate::error::{ApiResult, OrInternal};

/// Passwords are 8 to this many characters (what a form counts, and JSON Schema too).
pub const MAX_PASSWORD_CHARS: usize = 72;

/// What bcrypt is given for `password`. bcrypt reads at most 72 bytes and ignores the rest,
/// while a password of 72 characters may take up to 288 bytes of UTF-8: such a password is
/// first condensed to its SHA-256 (51 bytes of text), so every character counts. Passwords of
/// up to 72 bytes, all there were before, go to bcrypt as they are.
fn bcrypt_input(password: &str) -> Cow<'_, str> {
    if password.len() <= 72 {
        return Cow::Borrowed(password);
    }
    let digest = Sha256::digest(password.as_bytes());
    Cow::Owned(format!(
        "sha256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    ))
}

pub struct PasswordHasher {
    cost: u32,
    pool: BoundedPool,
    /// Verified against when the account does not exist, so an unknown user costs the
    /// same time as a wrong password.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(cost: u32) -> Result<Self, String> {
        let dummy_hash = bcrypt::hash("not-a-real-password", cost).map_err(|e| e.to_string())?;
        Ok(Self {
            cost,
            pool: BoundedPool::per_core("password"),
            dummy_hash,
        })
    }

    pub async fn hash(&self, password: String) -> ApiResult<String> {
        let cost = self.cost;
        self.pool
            .run(move || bcrypt::hash(bcrypt_input(&password).as_bytes(), cost))
            .await?
            .or_internal()
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is none.
    pub async fn verify(&self, password: String, hash: Option<String>) -> ApiResult<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = self
            .pool
            .run(move || bcrypt::verify(bcrypt_input(&password).as_bytes(), &hash).unwrap_or(false))
            .await?;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_multibyte_passwords_count_every_character() {
        let a = "é".repeat(72);
        let b = format!("{}a", "é".repeat(71));
        assert_ne!(bcrypt_input(&a), bcrypt_input(&b));
        assert!(bcrypt_input(&a).len() <= 72);
        assert_eq!(bcrypt_input("plain ascii password"), "plain ascii password");
    }
}
