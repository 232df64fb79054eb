-- Retention: how long a room keeps its events (seconds) and how many, each unset by default
-- (then the server's default applies, or everything is kept). A background task erases what is
-- past either limit, oldest first, never the room's newest event; erased_through records how
-- far it got, so firstSeq (erased_through + 1) is known without reading the events.
ALTER TABLE rooms
    ADD COLUMN retention_max_age    BIGINT,
    ADD COLUMN retention_max_events BIGINT,
    ADD COLUMN erased_through       BIGINT NOT NULL DEFAULT 0;
