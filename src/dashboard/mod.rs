//! One call that tells each role what needs attention, with links to the lists behind it.

pub mod repo;
pub mod routes;
