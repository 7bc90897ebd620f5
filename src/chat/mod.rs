//! Direct and group chats between customers, staff and bots: members, messages, read state.
//! Every change is an event in the members' streams (`crate::events`), which the WebSocket
//! (`crate::realtime`) delivers.

pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
