//! Bots: accounts with hashed tokens that chats take as members, and signed webhooks that
//! deliver their events until received (`delivery`), checked and signed in `webhook`.

pub mod delivery;
pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
pub mod webhook;
