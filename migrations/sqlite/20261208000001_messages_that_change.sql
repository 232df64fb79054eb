-- Messages that change: EDIT, DELETE, REACT and UNREACT are events of their own, each with its
-- room's next seq, and each also changes the TALK it names, in the same transaction: the TALK's
-- row holds its latest text (edited_at, the time of the last EDIT), a DELETE erases the text of
-- the TALK and of its EDITs (message NULL, deleted 1: gone from the rows, not hidden), and
-- reactions holds who reacted with what. A TALK may answer another (reply_to).
-- SQLite cannot change a column's CHECK or NOT NULL in place: the table is rebuilt.

CREATE TABLE events_changing (
    room_id       TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    message_id    TEXT    NOT NULL,
    kind          TEXT    NOT NULL
        CHECK (kind IN ('ENTER', 'TALK', 'LEAVE', 'EDIT', 'DELETE', 'REACT', 'UNREACT')),
    sender        TEXT    NOT NULL,
    -- NULL: erased by a DELETE, or none (DELETE, REACT, UNREACT).
    message       TEXT,
    client_msg_id TEXT,
    sent_at       INTEGER NOT NULL,
    -- The TALK an EDIT, DELETE, REACT or UNREACT is about.
    target_seq    INTEGER,
    emoji         TEXT,
    -- The TALK a TALK answers.
    reply_to      INTEGER,
    -- A TALK's last EDIT (epoch milliseconds).
    edited_at     INTEGER,
    -- A TALK deleted, or an EDIT of one.
    deleted       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;

INSERT INTO events_changing (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at)
SELECT room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at FROM events;

DROP TABLE events;

ALTER TABLE events_changing RENAME TO events;

CREATE UNIQUE INDEX events_by_message_id ON events (message_id);
-- Every frame that changes the room is stored once per clientMsgId (ENTER and LEAVE change
-- membership, which has rules of its own).
CREATE UNIQUE INDEX events_by_client_msg_id ON events (room_id, sender, client_msg_id)
    WHERE kind NOT IN ('ENTER', 'LEAVE') AND client_msg_id IS NOT NULL;
-- GET .../messages?replyTo=N pages through a TALK's replies.
CREATE INDEX replies ON events (room_id, reply_to, seq) WHERE reply_to IS NOT NULL;
-- A DELETE erases the text of its TALK's EDITs too.
CREATE INDEX edits_by_target ON events (room_id, target_seq) WHERE kind = 'EDIT';

CREATE TABLE reactions (
    room_id    TEXT    NOT NULL,
    target_seq INTEGER NOT NULL,
    emoji      TEXT    NOT NULL,
    sender     TEXT    NOT NULL,
    -- The REACT that made it: reactions are listed in the order they were made.
    seq        INTEGER NOT NULL,
    PRIMARY KEY (room_id, target_seq, emoji, sender)
) WITHOUT ROWID;
