-- Bots are identities whose token's roles include "bot": their events say so ("bot": true),
-- in history too, and so do the LEAVEs stored for them when their instance died (the
-- membership remembers it).
ALTER TABLE events ADD COLUMN bot INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN bot INTEGER NOT NULL DEFAULT 0;
