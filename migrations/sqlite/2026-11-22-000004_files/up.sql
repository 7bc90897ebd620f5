-- Thumbnails, generated once per content and size.
CREATE TABLE file_thumbnails (
    sha256 TEXT NOT NULL REFERENCES file_blobs (sha256) ON DELETE CASCADE,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (sha256, size)
);
CREATE INDEX users_avatar ON users (avatar_file_id);
CREATE INDEX items_photo ON items (photo_file_id);
