-- Messages that change: EDIT, DELETE, REACT and UNREACT are events of their own, each with its
-- room's next seq, and each also changes the TALK it names, in the same transaction: the TALK's
-- row holds its latest text (edited_at, the time of the last EDIT), a DELETE erases the text of
-- the TALK and of its EDITs (message NULL, deleted: gone from the rows, not hidden), and
-- reactions holds who reacted with what. A TALK may answer another (reply_to).

ALTER TABLE events DROP CONSTRAINT events_kind_check;
-- NOT VALID: every stored row passed the narrower check; nothing to scan.
ALTER TABLE events ADD CONSTRAINT events_kind_check
    CHECK (kind IN ('ENTER', 'TALK', 'LEAVE', 'EDIT', 'DELETE', 'REACT', 'UNREACT')) NOT VALID;
-- NULL: erased by a DELETE, or none (DELETE, REACT, UNREACT).
ALTER TABLE events ALTER COLUMN message DROP NOT NULL;
ALTER TABLE events
    -- The TALK an EDIT, DELETE, REACT or UNREACT is about.
    ADD COLUMN target_seq BIGINT,
    ADD COLUMN emoji      TEXT,
    -- The TALK a TALK answers.
    ADD COLUMN reply_to   BIGINT,
    -- A TALK's last EDIT (epoch milliseconds).
    ADD COLUMN edited_at  BIGINT,
    -- A TALK deleted, or an EDIT of one.
    ADD COLUMN deleted    BOOLEAN NOT NULL DEFAULT false;

-- Every frame that changes the room is stored once per clientMsgId (ENTER and LEAVE change
-- membership, which has rules of its own). Only TALKs exist among those kinds so far, so the
-- wider index holds the same rows as the one it replaces.
CREATE UNIQUE INDEX events_by_client_msg_id ON events (room_id, sender, client_msg_id)
    WHERE kind NOT IN ('ENTER', 'LEAVE') AND client_msg_id IS NOT NULL;
DROP INDEX talks_by_client_msg_id;
-- GET .../messages?replyTo=N pages through a TALK's replies.
CREATE INDEX replies ON events (room_id, reply_to, seq) WHERE reply_to IS NOT NULL;
-- A DELETE erases the text of its TALK's EDITs too.
CREATE INDEX edits_by_target ON events (room_id, target_seq) WHERE kind = 'EDIT';

CREATE TABLE reactions (
    room_id    UUID   NOT NULL,
    target_seq BIGINT NOT NULL,
    emoji      TEXT   NOT NULL,
    sender     TEXT   NOT NULL,
    -- The REACT that made it: reactions are listed in the order they were made.
    seq        BIGINT NOT NULL,
    PRIMARY KEY (room_id, target_seq, emoji, sender)
);
