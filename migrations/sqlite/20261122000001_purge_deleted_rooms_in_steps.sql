-- Deleting a room removes its row at once and its events afterwards, a bounded chunk at a time,
-- so one big room never holds up writes to every other room. Events therefore outlive their
-- room for a while: the foreign key and its cascade go (SQLite needs the table rebuilt for
-- that), and room_purges remembers which deleted rooms still have events, across restarts.

CREATE TABLE events_unbound (
    room_id       TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    -- A random v4 UUID, never looked up: no index, so inserts touch only the primary key.
    message_id    TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('ENTER', 'TALK', 'LEAVE')),
    sender        TEXT    NOT NULL,
    message       TEXT    NOT NULL,
    client_msg_id TEXT,
    sent_at       INTEGER NOT NULL,
    -- History, resume and purges read a room's events by seq range: the key serves all three.
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;

INSERT INTO events_unbound (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at)
SELECT room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at FROM events;

DROP TABLE events;

ALTER TABLE events_unbound RENAME TO events;

CREATE TABLE room_purges (
    room_id        TEXT    PRIMARY KEY,
    -- The room's last seq when it was deleted: none of its events lies beyond it.
    last_seq       INTEGER NOT NULL,
    -- Its events up to this seq are gone.
    purged_through INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Rooms are listed newest position first, and createdAt must never increase down that list.
-- New rooms are stamped no earlier than the room before them; rooms stamped before that rule
-- (before their insert was serialized) take the running maximum.
UPDATE rooms SET created_at = ordered.running
FROM (SELECT position, MAX(created_at) OVER (ORDER BY position) AS running FROM rooms) AS ordered
WHERE rooms.position = ordered.position AND rooms.created_at < ordered.running;
