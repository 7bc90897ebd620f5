//! Operations: liveness, readiness, Prometheus metrics and the OpenAPI document.

pub mod routes;
