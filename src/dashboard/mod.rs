//! One call that tells each role what needs attention, with links to the lists behind it.

pub mod routes;
pub mod service;
