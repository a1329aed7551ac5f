-- +goose Up
-- An order's personal data, sealed as its events hold it (internal/pii):
-- the query API opens it with the customer's key, and shows it erased once
-- the key is gone. NULL: none.
ALTER TABLE order_summaries ADD COLUMN email text, ADD COLUMN shipping_address text;

-- +goose Down
ALTER TABLE order_summaries DROP COLUMN email, DROP COLUMN shipping_address;
