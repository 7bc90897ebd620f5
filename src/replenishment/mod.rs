//! What needs restocking (for staff) or re-requesting (for customers), and customers'
//! replenishment requests, fulfilled atomically so stock never oversells.

pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
