-- Failure and sign-up counters shared by every process on the database. Keys are SHA-256
-- hashes, so no login name or address is stored here.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY NOT NULL,
    window_start TIMESTAMP NOT NULL,
    hits INTEGER NOT NULL
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);
