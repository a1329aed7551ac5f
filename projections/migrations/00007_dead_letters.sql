-- +goose Up
-- Dead letters: events a projection could not apply, and the later events
-- of their order it parked behind them (applying version n+1 after a
-- parked n would be wrong). An order with a parked row is parked for that
-- projection; every other order keeps flowing. `orderflow dlq` lists,
-- shows, replays and discards them (projections/deadletters.go).
CREATE TABLE projection_dead_letters (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection  text        NOT NULL,
    -- NULL for a message that is not an event envelope: no order to park.
    order_id    uuid,
    version     bigint,
    event_type  text        NOT NULL DEFAULT '',
    -- The Kafka message's value as it came: the public event envelope.
    envelope    bytea       NOT NULL,
    reason      text        NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now(),
    state       text        NOT NULL DEFAULT 'parked' CHECK (state IN ('parked', 'replayed', 'discarded')),
    resolved_at timestamptz,
    CHECK ((order_id IS NULL) = (version IS NULL)),
    CHECK ((state = 'parked') = (resolved_at IS NULL))
);
-- One parked row per event and projection (a redelivery parks nothing
-- new), and the probe every batch makes: is this order parked here?
CREATE UNIQUE INDEX projection_dead_letters_parked ON projection_dead_letters (projection, order_id, version)
    WHERE state = 'parked';
-- `orderflow dlq list`, newest first, by projection.
CREATE INDEX projection_dead_letters_list ON projection_dead_letters (projection, id);

-- The projector parks and resolves them (the dlq replay and discard
-- commands log in as the projector); the query role lists them. Nobody
-- deletes one: a resolved dead letter stays, with its state.
GRANT SELECT, INSERT, UPDATE ON projection_dead_letters TO orderflow_projector;
GRANT SELECT ON projection_dead_letters TO orderflow_query;

-- +goose Down
DROP TABLE projection_dead_letters;
