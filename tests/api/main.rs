//! Black-box tests over real HTTP, on SQLite by default and on PostgreSQL when
//! `TEST_DATABASE_URL` is set. One binary, so the suite links once.

mod authorization;
mod bots;
mod browser_and_proxies;
mod chat;
mod cli;
mod common;
mod concurrency;
mod contract;
mod crash;
mod docs;
mod files;
mod foundation;
mod identity;
mod inventory;
mod mass_assignment;
mod multipart_fuzz;
mod notifications;
mod rate_limits;
mod realtime;
mod replenishment;
mod security;
mod uploads_streamed;
mod video;
