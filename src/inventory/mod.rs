//! Items, their batches, the stock ledger, the expired / expiring / low-stock views and
//! CSV import and export.

pub mod alerts;
pub mod csv;
pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
pub mod stock;
