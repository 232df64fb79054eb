-- A deleted room's events stay for a while before they are purged, so a member still
-- replaying them (a resume with lastSeq) gets every one before CLOSED. Earlier deletions
-- (deleted_at 0) are due at once.
ALTER TABLE room_purges ADD COLUMN deleted_at INTEGER NOT NULL DEFAULT 0;
