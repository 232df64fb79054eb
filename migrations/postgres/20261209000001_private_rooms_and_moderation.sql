-- Private rooms, room roles and moderation (identity mode). A room is public or private; each
-- name may hold one role in it (owner, moderator, member); a name may be banned (kept out
-- until a time, or until lifted) or muted (may stay and read, not talk). Every grant, revoke,
-- kick, ban, mute and their undoing is also a MODERATION event of the room (its details in
-- the event's moderation column, as JSON), stored in the same transaction as the change.

ALTER TABLE rooms ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public'
    CHECK (visibility IN ('public', 'private'));

ALTER TABLE events DROP CONSTRAINT events_kind_check;
-- NOT VALID: every stored row passed the narrower check; nothing to scan.
ALTER TABLE events ADD CONSTRAINT events_kind_check
    CHECK (kind IN ('ENTER', 'TALK', 'LEAVE', 'EDIT', 'DELETE', 'REACT', 'UNREACT',
                    'MODERATION')) NOT VALID;
-- A MODERATION event's action, target, by, role, until and reason.
ALTER TABLE events ADD COLUMN moderation TEXT;

CREATE TABLE room_roles (
    room_id    UUID    NOT NULL,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('owner', 'moderator', 'member')),
    granted_by TEXT    NOT NULL,
    granted_at BIGINT  NOT NULL,
    PRIMARY KEY (room_id, name)
);
-- The rooms a name holds a role in: the private rooms it may see in the room list.
CREATE INDEX roles_by_name ON room_roles (name, room_id);

CREATE TABLE room_bans (
    room_id   UUID   NOT NULL,
    name      TEXT   NOT NULL,
    -- Epoch milliseconds; NULL: until lifted.
    until     BIGINT,
    reason    TEXT,
    banned_by TEXT   NOT NULL,
    banned_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, name)
);

CREATE TABLE room_mutes (
    room_id  UUID   NOT NULL,
    name     TEXT   NOT NULL,
    until    BIGINT,
    muted_by TEXT   NOT NULL,
    muted_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, name)
);
