-- Webhooks: where events are sent (an admin's), and how far each room's were delivered. The
-- events themselves are the outbox: nothing is copied into a queue, a position per webhook and
-- room says which was the last one sent (or passed over, for not matching the webhook's types).
CREATE TABLE webhooks (
    webhook_id     TEXT    PRIMARY KEY,
    url            TEXT    NOT NULL,
    -- JSON arrays; NULL: every room, every type.
    rooms          TEXT,
    types          TEXT,
    -- The signing secret sealed with the server's webhook key (ChaCha20-Poly1305): a copy of
    -- the file alone does not let anyone sign.
    sealed_secret  BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    -- The instance that delivers it, until when (epoch ms).
    lease_instance TEXT,
    lease_until    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE webhook_positions (
    webhook_id    TEXT    NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    room_id       TEXT    NOT NULL,
    delivered_seq INTEGER NOT NULL,
    -- Why the next event has not gone yet, and since when it keeps failing (epoch ms).
    last_error    TEXT,
    failing_since INTEGER,
    PRIMARY KEY (webhook_id, room_id)
);
