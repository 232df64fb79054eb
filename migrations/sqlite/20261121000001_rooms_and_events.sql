-- Rooms and their events. Timestamps are epoch milliseconds (UTC); ids are UUID text.

CREATE TABLE rooms (
    -- Creation order: the key of the newest-first room list and of its opaque cursor.
    position   INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id    TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    -- The seq of the room's newest event; bumped in the same transaction that stores the event,
    -- so seq stays gap-free and survives restarts.
    last_seq   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE events (
    room_id       TEXT    NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    -- A random v4 UUID, never looked up: no index, so inserts touch only the primary key.
    message_id    TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('ENTER', 'TALK', 'LEAVE')),
    sender        TEXT    NOT NULL,
    message       TEXT    NOT NULL,
    client_msg_id TEXT,
    sent_at       INTEGER NOT NULL,
    -- History and resume read a room's events by seq range: the key serves both.
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;
