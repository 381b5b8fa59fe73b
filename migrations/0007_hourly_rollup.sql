-- Hourly rollup (SPEC §6): one row per (hour, dimension, value), rolled once the global
-- watermark passes the hour's end, rolled again when a checkout is written later for it.
CREATE TABLE shop.hourly_rollup (
  hour           timestamptz NOT NULL,
  dimension      text NOT NULL CHECK (dimension IN ('source', 'category', 'gender', 'payment')),
  value          text NOT NULL,
  checkouts      integer NOT NULL,
  paid_checkouts integer NOT NULL,
  units          bigint NOT NULL,
  revenue        numeric(16,2) NOT NULL,
  profit         numeric(16,2) NOT NULL,
  rolled_at      timestamptz NOT NULL,
  PRIMARY KEY (hour, dimension, value)
);

-- Hours with checkouts written since they were last rolled: marked by the sink in the same
-- transaction as the rows, cleared by the roll that covers them.
CREATE TABLE shop.rollup_pending (
  hour      timestamptz PRIMARY KEY,
  marked_at timestamptz NOT NULL
);

-- Checkouts written before the rollup existed: their hours are rolled like any other.
INSERT INTO shop.rollup_pending (hour, marked_at)
SELECT DISTINCT date_trunc('hour', checkout_timestamp AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', now()
FROM shop.checkout_attribution
ON CONFLICT (hour) DO NOTHING;
