-- A deleted room's events stay for a while before they are purged, so a member still
-- replaying them (a resume with lastSeq) gets every one before CLOSED. Earlier deletions are
-- due at once; new ones are stamped with the database's clock.
ALTER TABLE room_purges ADD COLUMN deleted_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity';
