-- The table pipelines/examples/orders-postgres-nightly.yaml reads (schema public), with a few orders. Run it once:
--   psql "$DATABASE_URL" -f pipelines/examples/orders-postgres-nightly.sql
-- Running it again starts the table over (it is dropped and created again).
CREATE SCHEMA IF NOT EXISTS public;
SET search_path TO public;
DROP TABLE IF EXISTS orders;
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  order_number text NOT NULL,
  email text NOT NULL,
  total numeric(12, 2) NOT NULL,
  currency text NOT NULL,
  placed_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  status text NOT NULL,
  line_items jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX orders_updated_at_id ON orders (updated_at, id);
INSERT INTO orders VALUES
  (1, '1001', 'ann@example.com', 25.50, 'USD', '2026-03-01T10:00:00Z', '2026-03-01T10:00:00Z', 'paid', '[{"sku": "MUG-1", "qty": 1}]'),
  (2, '1002', 'bob@example.com', 10.00, 'USD', '2026-03-01T11:00:00Z', '2026-03-01T11:00:00Z', 'test', '[]'),
  (3, '1003', 'cy@example.com', 7.25, 'EUR', '2026-03-01T12:00:00Z', '2026-03-02T09:00:00Z', 'paid', '[{"sku": "PEN-2", "qty": 3}]');
