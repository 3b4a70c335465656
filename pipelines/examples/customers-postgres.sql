-- The table pipelines/examples/customers-postgres.yaml reads (schema crm), with a few customers. Run it once:
--   psql "$DATABASE_URL" -f pipelines/examples/customers-postgres.sql
-- Running it again starts the table over (it is dropped and created again).
CREATE SCHEMA IF NOT EXISTS crm;
SET search_path TO crm;
DROP TABLE IF EXISTS customers;
CREATE TABLE customers (
  id bigint PRIMARY KEY,
  email text,
  phone text,
  first_name text,
  last_name text,
  city text,
  country text,
  loyalty_tier text,
  lifetime_value numeric(12, 2),
  updated_at timestamptz NOT NULL
);
INSERT INTO customers VALUES
  (1, 'ann@example.com', '(212) 736-5000', 'Ann', 'Lee', 'Boston', 'US', 'gold', 120.50, '2026-03-01T10:00:00Z'),
  (2, 'bob@example.com', NULL, 'Bob', 'Ray', 'Austin', 'US', NULL, NULL, '2026-03-01T11:00:00Z'),
  (3, 'cy@example.com', '+44 20 7946 0958', 'Cy', 'Moss', 'London', 'GB', 'silver', 48.00, '2026-03-02T09:30:00Z');
