-- The PostgreSQL schema: the same model as the SQLite one, shared by every instance.
-- Timestamps of events and rooms are epoch milliseconds (UTC), as in SQLite, so both backends
-- store and show them alike; heartbeats use the database's own clock, so instances on
-- machines whose clocks differ still agree on who is silent.

CREATE TABLE rooms (
    -- Creation order: the key of the newest-first room list and of its opaque cursor.
    position   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id    UUID   NOT NULL UNIQUE,
    name       TEXT   NOT NULL,
    -- Never before the room created before it (rooms are created under an advisory lock).
    created_at BIGINT NOT NULL,
    -- The seq of the room's newest event, bumped in the transaction that stores the event,
    -- under the room row's lock: seq stays unique and gap-free whichever instance stores it.
    last_seq   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE events (
    room_id       UUID   NOT NULL,
    seq           BIGINT NOT NULL,
    -- A random v4 UUID, never looked up: no index, so inserts touch only the primary key.
    message_id    UUID   NOT NULL,
    kind          TEXT   NOT NULL CHECK (kind IN ('ENTER', 'TALK', 'LEAVE')),
    sender        TEXT   NOT NULL,
    message       TEXT   NOT NULL,
    client_msg_id TEXT,
    sent_at       BIGINT NOT NULL,
    -- History, resume, gap fills and purges read a room's events by seq range.
    PRIMARY KEY (room_id, seq)
);

-- Deleted rooms whose events are still being removed, a bounded chunk at a time (no foreign
-- key from events to rooms: the events outlive their room for that while).
CREATE TABLE room_purges (
    room_id        UUID   PRIMARY KEY,
    last_seq       BIGINT NOT NULL,
    purged_through BIGINT NOT NULL DEFAULT 0
);

-- Running processes, and the latest heartbeat of each.
CREATE TABLE instances (
    instance_id  UUID        PRIMARY KEY,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

-- Who is in which room: a row per (instance, session, room), added with the session's ENTER
-- and removed with its LEAVE, in the same transaction.
CREATE TABLE members (
    instance_id UUID   NOT NULL,
    session_id  BIGINT NOT NULL,
    room_id     UUID   NOT NULL,
    sender      TEXT   NOT NULL,
    PRIMARY KEY (instance_id, session_id, room_id)
);

-- memberCount counts a room's rows.
CREATE INDEX members_by_room ON members (room_id);
