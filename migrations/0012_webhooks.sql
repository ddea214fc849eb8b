-- Webhook endpoints and every try to reach them (SPEC §12).

-- The company's receivers. The signing secret is stored only sealed (AES-256-GCM under
-- WEBHOOK_SECRET_KEYS, the key id beside it); the API shows it once, at creation or rotation.
-- During a rotation the previous secret keeps signing, beside the new one, until
-- previous_secret_expires_at. Deleting an endpoint marks it deleted (its tries stay on record).
CREATE TABLE webhook_endpoints (
    id                          text PRIMARY KEY CHECK (id ~ '^we_[0-9a-z]{24}$'),
    url                         text NOT NULL CHECK (length(url) BETWEEN 8 AND 2048),
    events                      text[] NOT NULL CHECK (cardinality(events) >= 1),
    secret_key_id               text NOT NULL,
    secret_sealed               bytea NOT NULL,
    previous_secret_key_id      text,
    previous_secret_sealed      bytea,
    previous_secret_expires_at  timestamptz,
    created_by                  text NOT NULL,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    -- Since when every try has failed (NULL: the last try succeeded, or none yet).
    failing_since               timestamptz,
    disabled_at                 timestamptz,
    disabled_reason             text,
    deleted_at                  timestamptz,
    CHECK ((previous_secret_sealed IS NULL) = (previous_secret_expires_at IS NULL))
);
CREATE INDEX webhook_endpoints_live ON webhook_endpoints (created_at)
    WHERE disabled_at IS NULL AND deleted_at IS NULL;

-- One row per try: when, the status code, how long it took, what went wrong. Never the
-- response body (a receiver's answer may hold anything). `try_key` (workflow run + attempt)
-- makes recording a try idempotent when its activity is retried.
CREATE TABLE webhook_deliveries (
    id            bigserial PRIMARY KEY,
    try_key       text NOT NULL UNIQUE,
    endpoint_id   text NOT NULL REFERENCES webhook_endpoints (id),
    event_id      text NOT NULL REFERENCES events (id),
    attempt       integer NOT NULL CHECK (attempt >= 1),
    attempted_at  timestamptz NOT NULL DEFAULT now(),
    outcome       text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'endpoint_gone')),
    status_code   integer,
    duration_ms   integer NOT NULL CHECK (duration_ms >= 0),
    error         text CHECK (length(error) <= 300)
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
