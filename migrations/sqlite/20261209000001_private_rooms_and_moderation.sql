-- Private rooms, room roles and moderation (identity mode). A room is public or private; each
-- name may hold one role in it (owner, moderator, member); a name may be banned (kept out
-- until a time, or until lifted) or muted (may stay and read, not talk). Every grant, revoke,
-- kick, ban, mute and their undoing is also a MODERATION event of the room (its details in
-- the event's moderation column, as JSON), stored in the same transaction as the change.
-- SQLite cannot change a column's CHECK in place: the events table is rebuilt.

ALTER TABLE rooms ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public'
    CHECK (visibility IN ('public', 'private'));

CREATE TABLE events_moderated (
    room_id       TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    message_id    TEXT    NOT NULL,
    kind          TEXT    NOT NULL
        CHECK (kind IN ('ENTER', 'TALK', 'LEAVE', 'EDIT', 'DELETE', 'REACT', 'UNREACT',
                        'MODERATION')),
    sender        TEXT    NOT NULL,
    message       TEXT,
    client_msg_id TEXT,
    sent_at       INTEGER NOT NULL,
    target_seq    INTEGER,
    emoji         TEXT,
    reply_to      INTEGER,
    edited_at     INTEGER,
    deleted       INTEGER NOT NULL DEFAULT 0,
    -- A MODERATION event's action, target, by, role, until and reason.
    moderation    TEXT,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;

INSERT INTO events_moderated (room_id, seq, message_id, kind, sender, message, client_msg_id,
                              sent_at, target_seq, emoji, reply_to, edited_at, deleted)
SELECT room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at, target_seq,
       emoji, reply_to, edited_at, deleted
FROM events;

DROP TABLE events;

ALTER TABLE events_moderated RENAME TO events;

CREATE UNIQUE INDEX events_by_message_id ON events (message_id);
CREATE UNIQUE INDEX events_by_client_msg_id ON events (room_id, sender, client_msg_id)
    WHERE kind NOT IN ('ENTER', 'LEAVE') AND client_msg_id IS NOT NULL;
CREATE INDEX replies ON events (room_id, reply_to, seq) WHERE reply_to IS NOT NULL;
CREATE INDEX edits_by_target ON events (room_id, target_seq) WHERE kind = 'EDIT';

CREATE TABLE room_roles (
    room_id    TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('owner', 'moderator', 'member')),
    granted_by TEXT    NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, name)
) WITHOUT ROWID;
-- The rooms a name holds a role in: the private rooms it may see in the room list.
CREATE INDEX roles_by_name ON room_roles (name, room_id);

CREATE TABLE room_bans (
    room_id   TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    -- Epoch milliseconds; NULL: until lifted.
    until     INTEGER,
    reason    TEXT,
    banned_by TEXT    NOT NULL,
    banned_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, name)
) WITHOUT ROWID;

CREATE TABLE room_mutes (
    room_id  TEXT    NOT NULL,
    name     TEXT    NOT NULL,
    until    INTEGER,
    muted_by TEXT    NOT NULL,
    muted_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, name)
) WITHOUT ROWID;
