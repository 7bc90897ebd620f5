//! bcrypt on a bounded pool sized to the cores, so a burst of logins cannot starve other
//! requests (see `crate::blocking`).

use crate::blocking::BoundedPool;
use crate::error::{ApiResult, OrInternal};

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
            .run(move || bcrypt::hash(password, cost))
            .await?
            .or_internal()
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is none.
    pub async fn verify(&self, password: String, hash: Option<String>) -> ApiResult<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = self
            .pool
            .run(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await?;
        Ok(ok && known)
    }
}
