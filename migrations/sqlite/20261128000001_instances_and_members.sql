-- Who is in which room, stored with the events that change it: an ENTER adds its session's row
-- and a LEAVE removes it, in the same transaction, so presence and history never disagree.
-- A member is a session of one running process (an instance); an instance that stops
-- heartbeating is dead, and its members get a LEAVE each when their rows are reaped.

CREATE TABLE instances (
    instance_id  TEXT    PRIMARY KEY,
    -- Epoch milliseconds of its latest heartbeat.
    heartbeat_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE members (
    instance_id TEXT    NOT NULL,
    session_id  INTEGER NOT NULL,
    room_id     TEXT    NOT NULL,
    -- The name its ENTER was stored under: the LEAVE stored for it carries the same.
    sender      TEXT    NOT NULL,
    PRIMARY KEY (instance_id, session_id, room_id)
) WITHOUT ROWID;

-- memberCount counts a room's rows.
CREATE INDEX members_by_room ON members (room_id);
