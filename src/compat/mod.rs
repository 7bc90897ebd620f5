//! Routes kept for clients of the earlier FastAPI service, answering exactly as it did.

pub mod routes;
