-- Chats, their members and messages; and every user's durable event stream, which the
-- WebSocket replays from (see src/events).
CREATE TABLE chats (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    title TEXT,
    -- "<lower user id>:<higher user id>" for a direct chat: one chat per pair, even when two
    -- requests race to create it.
    direct_key TEXT UNIQUE,
    created_by BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    last_message_id BIGINT,
    last_activity_at TIMESTAMP NOT NULL
);
CREATE INDEX chats_activity ON chats (last_activity_at, id);

CREATE TABLE chat_members (
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    joined_at TIMESTAMP NOT NULL,
    -- Messages up to this id count as read; it never moves backwards.
    last_read_message_id BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_user ON chat_members (user_id, chat_id);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    author_id BIGINT NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL CHECK (kind IN ('text', 'image', 'file')),
    body TEXT,
    file_id BIGINT REFERENCES files (id) ON DELETE SET NULL,
    client_id TEXT,
    created_at TIMESTAMP NOT NULL,
    edited_at TIMESTAMP,
    deleted_at TIMESTAMP
);
CREATE INDEX messages_chat ON messages (chat_id, id);
-- A send carrying a client_id is stored once, however often it is retried.
CREATE UNIQUE INDEX messages_client ON messages (chat_id, author_id, client_id);
CREATE INDEX messages_file ON messages (file_id);

-- Each user's position counter. Taking a position locks the user's row until the writing
-- transaction ends, so a user's events commit in the order of their positions.
CREATE TABLE event_streams (
    user_id BIGINT PRIMARY KEY NOT NULL REFERENCES users (id),
    last_seq BIGINT NOT NULL
);

-- An event's payload, stored once however many users receive it.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    -- What the event is about (`message:<id>`), so its stored payload can be scrubbed when
    -- that thing is deleted: a replay must not bring a deleted message back.
    topic TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX events_created ON events (created_at);
CREATE INDEX events_topic ON events (topic);

-- Who receives an event, at which position of their stream.
CREATE TABLE user_events (
    user_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    event_id BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
CREATE INDEX user_events_event ON user_events (event_id);

-- Every user has a stream from the start (new users get theirs when they are created).
INSERT INTO event_streams (user_id, last_seq) SELECT id, 0 FROM users;
