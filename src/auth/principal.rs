//! The authenticated caller, put into the request by the auth middleware.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, FromRequest, HttpMessage, HttpRequest};

use super::policy::{allows, Action, Role};
use crate::coherence::Ticket;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub role: Role,
    /// The login session of a person; bots have none.
    pub session_id: Option<i64>,
    /// Set when the caller is a bot (authenticated with `Authorization: Bot …`).
    pub bot_id: Option<i64>,
    /// Taken when the request arrived: memory that answers for it waits for this ticket to
    /// pass the fence (PostgreSQL; see `crate::coherence`). None takes one when needed.
    pub ticket: Option<Ticket>,
}

impl Principal {
    pub fn is_staff(&self) -> bool {
        self.role.is_staff()
    }

    /// 403 unless the role table allows `action`.
    pub fn require(&self, action: Action) -> ApiResult<()> {
        if allows(self.role, action) {
            Ok(())
        } else if self.role == Role::Bot {
            Err(ApiError::Forbidden(
                "bots may not use this route".to_owned(),
            ))
        } else {
            Err(ApiError::Forbidden(format!(
                "a {} may not do this",
                self.role.as_str()
            )))
        }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .ok_or_else(|| ApiError::Unauthorized("credentials are required".to_owned())),
        )
    }
}
