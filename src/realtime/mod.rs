//! The WebSocket every client keeps open: its user's event stream (replayed from `?since=`,
//! then live), and a few client commands (send a message, typing, ping).

pub mod dto;
pub mod routes;
pub mod socket;
