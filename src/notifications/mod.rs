//! Notifications: what a person should look at, stored per recipient and pushed live as
//! `notification.created` in their event stream. Other areas raise them inside their own
//! transactions ([`service::notify`]); a cause notifies each recipient once, enforced by a
//! unique key in the database rather than by memory, so re-scans, restarts and several
//! processes never duplicate one.

pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
