//! The camera socket: frames in, analysis out (brightness, motion, barcodes matched to
//! inventory items, processed images), with backpressure (`socket.rs`) and the per-frame
//! work done on a bounded pool (`analysis.rs`).

pub mod analysis;
pub mod dto;
pub mod routes;
pub mod socket;
