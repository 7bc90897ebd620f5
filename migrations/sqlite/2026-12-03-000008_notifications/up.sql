-- Notifications, and the state that makes each cause notify each recipient once.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    -- What raised it ("batch:12:expired:2026-12-01", "request:7:created", ...). Unique per
    -- recipient: re-scans, restarts and processes scanning at the same moment all insert
    -- with ON CONFLICT DO NOTHING, so a cause notifies each recipient once, whoever wins.
    cause TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id BIGINT NOT NULL,
    path TEXT NOT NULL,
    -- New messages a chat notification stands for; 1 for everything else.
    count BIGINT NOT NULL DEFAULT 1,
    -- The newest message a chat notification stands for: reading up to it reads it.
    last_message_id BIGINT,
    read_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX notifications_cause ON notifications (user_id, cause);
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE INDEX notifications_unread ON notifications (user_id, id) WHERE read_at IS NULL;
-- The open notification of a chat, which new messages add to.
CREATE INDEX notifications_open_subject ON notifications (user_id, subject_type, subject_id)
    WHERE read_at IS NULL;
-- What is about a chat that is deleted goes with it.
CREATE INDEX notifications_subject ON notifications (subject_type, subject_id);

-- A member who muted a chat gets no notifications from it (its events still arrive).
ALTER TABLE chat_members ADD COLUMN muted BOOLEAN NOT NULL DEFAULT FALSE;

-- Expiry alerts: stage 0 = nothing sent, 1 = "expiring" sent, 2 = done (expired sent, or no
-- expiry date). alert_on is the day the next stage is due, so a scan reads only the rows
-- whose state changed since the last one (the partial index holds just the pending rows).
-- New rows start due at once: whatever inserted them, the next check or scan schedules them.
ALTER TABLE batches ADD COLUMN alert_stage INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN alert_on DATE NOT NULL DEFAULT '1970-01-01';
CREATE INDEX batches_alert_due ON batches (alert_on, item_id) WHERE alert_stage < 2;
ALTER TABLE holdings ADD COLUMN alert_stage INTEGER NOT NULL DEFAULT 0;
ALTER TABLE holdings ADD COLUMN alert_on DATE NOT NULL DEFAULT '1970-01-01';
CREATE INDEX holdings_alert_due ON holdings (alert_on, id) WHERE alert_stage < 2;

-- Low stock: whether the current low spell was notified, and how many spells were (a
-- restocked item that falls low again is a new cause). alert_due marks items to check at the
-- next scan (every item at first, and any item written by a path that did not check it).
ALTER TABLE items ADD COLUMN low_stock_alerted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE items ADD COLUMN low_stock_spells BIGINT NOT NULL DEFAULT 0;
ALTER TABLE items ADD COLUMN alert_due BOOLEAN NOT NULL DEFAULT TRUE;
CREATE INDEX items_alert_due ON items (id) WHERE alert_due;

-- The default expiry window the pending alerts were scheduled with: when the setting
-- changes, every pending row is rescheduled once.
CREATE TABLE alert_settings (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    default_window INTEGER NOT NULL
);
