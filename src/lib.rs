//! Stockroom: an open backend for a store and its customers.
//!
//! Shared plumbing (`config`, `db`, `error`, `events`, `extract`, `openapi`, `router`,
//! `state`, `telemetry`) sits beside one module per area, each holding its routes, DTOs,
//! service and repository. `events` keeps every user's durable event stream and delivers it
//! live (in-process, and across processes through PostgreSQL's LISTEN/NOTIFY); `chat`
//! records its changes there and `realtime` serves the stream over a WebSocket.

pub mod auth;
pub mod blobs;
pub mod blocking;
pub mod bootstrap;
pub mod bots;
pub mod chat;
pub mod coherence;
pub mod compat;
pub mod config;
pub mod connections;
pub mod customer_inventory;
pub mod dashboard;
pub mod db;
pub mod demo;
pub mod error;
pub mod events;
pub mod extract;
pub mod files;
pub mod identity;
pub mod images;
pub mod inventory;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod pagination;
pub mod people;
#[cfg(test)]
pub(crate) mod proptest_support;
pub mod realtime;
pub mod replenishment;
pub mod response_headers;
pub mod router;
pub mod server;
pub mod slots;
pub mod state;
pub mod stock_rules;
pub mod telemetry;
pub mod throttle;
pub mod time;
pub mod validation;
pub mod video;
