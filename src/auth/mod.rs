//! Authentication and authorization plumbing shared by every area: tokens, the
//! authenticated principal, the middleware that guards protected scopes, the one table of
//! role rules, password hashing on a bounded pool, and failure rate limits.

pub mod bots;
pub mod middleware;
pub mod passwords;
pub mod policy;
pub mod principal;
pub mod rate_limit;
pub mod session_cache;
pub mod sessions;
pub mod tokens;

pub use policy::{Action, Role};
pub use principal::Principal;
