-- What one pay-link holder may do (issue 21, finding 3), kept here so every portal process agrees,
-- and enforced by the portal before an Update reaches Temporal.
--
-- One row per link: the link is known by the SHA-256 of its nonce, never by its token. `sends`
-- and `wrong_codes` count for the link's whole life (slow guessing over weeks stays bounded);
-- `refusals` and `payment_tries` count within a window that starts again when it has passed.
CREATE TABLE pay_link_budgets (
    link_id                    bytea PRIMARY KEY,
    invoice_id                 text NOT NULL,
    sends                      integer NOT NULL DEFAULT 0,
    wrong_codes                integer NOT NULL DEFAULT 0,
    refusals                   integer NOT NULL DEFAULT 0,
    refusals_window_started_at timestamptz NOT NULL DEFAULT now(),
    payment_tries              integer NOT NULL DEFAULT 0,
    payments_window_started_at timestamptz NOT NULL DEFAULT now(),
    created_at                 timestamptz NOT NULL DEFAULT now(),
    CHECK (sends >= 0 AND wrong_codes >= 0 AND refusals >= 0 AND payment_tries >= 0)
);
CREATE INDEX pay_link_budgets_invoice ON pay_link_budgets (invoice_id);

-- A refusal that wrote an audit row and history (a send refused by the invoice's or the
-- destination's cap) holds further requests of the same kind for the invoice until it would be
-- allowed again: they are answered from here, writing nothing more.
CREATE TABLE refusal_holds (
    invoice_id  text NOT NULL,
    action      text NOT NULL,                -- 'code' or 'code:<channel>'
    refusal     text NOT NULL,                -- the RefusalType the workflow answered
    message     text NOT NULL,
    hold_until  timestamptz NOT NULL,
    repeats     integer NOT NULL DEFAULT 0,   -- requests answered from the hold
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (invoice_id, action)
);
