-- Who is here since when, who has read what, and resends that are never stored twice.

-- Each membership keeps when its ENTER was stored (that event's sentAt, epoch milliseconds),
-- so the members list says since when each sender is in the room. Memberships from before
-- take their sender's latest ENTER in the room.
ALTER TABLE members ADD COLUMN entered_at INTEGER NOT NULL DEFAULT 0;
UPDATE members SET entered_at = COALESCE(
    (SELECT MAX(sent_at) FROM events
     WHERE events.room_id = members.room_id AND events.sender = members.sender
       AND events.kind = 'ENTER'),
    0);

-- The highest seq each sender has read in each room. It outlives the sender's memberships
-- (leaving, restarts); deleting the room removes it.
CREATE TABLE read_markers (
    room_id  TEXT    NOT NULL,
    sender   TEXT    NOT NULL,
    read_seq INTEGER NOT NULL,
    PRIMARY KEY (room_id, sender)
) WITHOUT ROWID;

-- A TALK whose clientMsgId its sender already used in the room is the same message sent
-- again: it is never stored twice. The writer looks the first one up under the room's lock;
-- this key makes a second copy impossible whatever happens. It covers only TALKs that carry
-- an id, so a TALK without one costs nothing more to store. Copies stored before this rule
-- keep their text but lose the id (the first keeps it), so the rule holds for every row.
UPDATE events SET client_msg_id = NULL
WHERE kind = 'TALK' AND client_msg_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM events AS first
              WHERE first.room_id = events.room_id AND first.sender = events.sender
                AND first.kind = 'TALK' AND first.client_msg_id = events.client_msg_id
                AND first.seq < events.seq);
CREATE UNIQUE INDEX talks_by_client_msg_id ON events (room_id, sender, client_msg_id)
    WHERE kind = 'TALK' AND client_msg_id IS NOT NULL;
