-- Retention: how long a room keeps its events (seconds) and how many, each unset by default
-- (then the server's default applies, or everything is kept). A background task erases what is
-- past either limit, oldest first, never the room's newest event; erased_through records how
-- far it got, so firstSeq (erased_through + 1) is known without reading the events.
ALTER TABLE rooms ADD COLUMN retention_max_age INTEGER;
ALTER TABLE rooms ADD COLUMN retention_max_events INTEGER;
ALTER TABLE rooms ADD COLUMN erased_through INTEGER NOT NULL DEFAULT 0;
