//! Operations: liveness, readiness, Prometheus metrics and the OpenAPI document.

pub mod metrics;
pub mod routes;
