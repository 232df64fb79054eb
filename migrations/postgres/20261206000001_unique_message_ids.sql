-- A batch whose COMMIT went unanswered is looked up by its events' message ids before anyone
-- hears of it (never stored again blindly), and no event may ever be stored twice: message ids
-- are unique, and indexed for that lookup.
CREATE UNIQUE INDEX events_by_message_id ON events (message_id);
