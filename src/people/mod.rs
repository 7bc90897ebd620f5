//! Customers as staff see them, every account as the owner sees it, and staff roles.

pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
