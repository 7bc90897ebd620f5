//! Sign-up, login (username or email), sessions with refresh-token rotation, logout,
//! the own profile and password.

pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
pub mod validate;
