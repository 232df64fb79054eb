-- Webhooks: where events are sent (an admin's), and how far each room's were delivered. The
-- events themselves are the outbox: nothing is copied into a queue, a position per webhook and
-- room says which was the last one sent (or passed over, for not matching the webhook's types).
CREATE TABLE webhooks (
    webhook_id     UUID   PRIMARY KEY,
    url            TEXT   NOT NULL,
    -- JSON arrays; NULL: every room, every type.
    rooms          TEXT,
    types          TEXT,
    -- The signing secret sealed with the server's webhook key (ChaCha20-Poly1305): a dump of
    -- the database alone does not let anyone sign.
    sealed_secret  BYTEA  NOT NULL,
    created_at     BIGINT NOT NULL,
    -- The instance that delivers it, until when (the database's clock): one at a time, and
    -- another takes over once an instance that died lets its lease run out.
    lease_instance UUID,
    lease_until    TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);

CREATE TABLE webhook_positions (
    webhook_id    UUID   NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    room_id       UUID   NOT NULL,
    delivered_seq BIGINT NOT NULL,
    -- Why the next event has not gone yet, and since when it keeps failing (epoch ms).
    last_error    TEXT,
    failing_since BIGINT,
    PRIMARY KEY (webhook_id, room_id)
);
