//! A customer's own inventory: the holdings the store gave them.

pub mod alerts;
pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
