//! Uploaded files: type decided from the bytes, images decoded under limits, content
//! stored once per SHA-256 behind a storage interface, served with caching, thumbnails.

pub mod body;
pub mod dto;
pub mod inspect;
pub mod repo;
pub mod routes;
pub mod service;
