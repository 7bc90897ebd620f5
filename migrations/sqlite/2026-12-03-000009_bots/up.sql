-- Bots: accounts (a users row with role 'bot', which chats take as a member) with a token
-- kept only as its SHA-256, an optional webhook, and the webhook's delivery log.
CREATE TABLE bots (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    user_id BIGINT NOT NULL UNIQUE REFERENCES users (id),
    name TEXT NOT NULL,
    description TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    -- The server signs with it, so it is kept as given (`whsec_<base64>`).
    signing_secret TEXT NOT NULL,
    webhook_url TEXT,
    -- Set when the receiver answered 410 Gone; setting the URL again clears it.
    webhook_disabled_at TIMESTAMP,
    webhook_disabled_reason TEXT,
    -- The position of the bot's event stream up to which deliveries exist: the stream is
    -- the outbox (written in the transaction of each change), deliveries are read from it.
    delivered_seq BIGINT NOT NULL DEFAULT 0,
    -- When the oldest pending delivery is due (NULL: nothing pending), so the worker's
    -- query for work is one index range.
    next_attempt_at TIMESTAMP,
    -- The process sending this bot's deliveries, one at a time, in order, until then.
    lease_owner TEXT,
    lease_until TIMESTAMP,
    created_by BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX bots_due ON bots (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    bot_id BIGINT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    -- The event's position in the bot's stream: deliveries go out in this order.
    seq BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    -- The body sent, kept here so it outlives the event's retention.
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error TEXT,
    last_attempt_at TIMESTAMP,
    next_attempt_at TIMESTAMP,
    delivered_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (bot_id, seq)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (bot_id, seq)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (bot_id, id);
CREATE INDEX webhook_deliveries_age ON webhook_deliveries (created_at);
