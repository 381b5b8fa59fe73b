-- The engine's output schema (SPEC §5). Every table is written with keyed upserts,
-- so replaying input after a crash rewrites the same rows.
CREATE SCHEMA IF NOT EXISTS shop;

CREATE TABLE shop.users (
  user_id           text PRIMARY KEY,
  name              text,
  email             text,
  gender            text,
  birth_day         text,
  location          text,
  phone             text,
  registration_date text,
  updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shop.products (
  product_id      text PRIMARY KEY,
  name            text,
  category        text,
  brand           text,
  price           numeric(12,2),
  commission_rate numeric(8,6),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shop.checkout_attribution (
  checkout_id         text PRIMARY KEY,
  user_id             text NOT NULL,
  product_id          text NOT NULL,
  quantity            integer NOT NULL,
  shipping_cost       numeric(12,2) NOT NULL,
  discount            numeric NOT NULL,
  payment_method      text,
  payment_status      text NOT NULL,
  payment_description text,
  shipping_address    text,
  checkout_timestamp  timestamptz NOT NULL,
  gender              text,
  category            text,
  product_name        text,
  brand               text,
  total_amount        numeric(12,2),
  profit              numeric(12,2),
  click_id            text,
  source              text,
  click_timestamp     timestamptz,
  is_late             boolean NOT NULL,
  written_at          timestamptz NOT NULL
);
CREATE INDEX checkout_attribution_ts_idx ON shop.checkout_attribution (checkout_timestamp);

-- Events older than the watermark when processed. A late click joins nothing; a late
-- checkout is also in checkout_attribution with is_late = true.
CREATE TABLE shop.late_events (
  topic           text NOT NULL,
  event_id        text NOT NULL,
  user_id         text NOT NULL,
  event_timestamp timestamptz NOT NULL,
  watermark       timestamptz NOT NULL,
  "partition"     integer NOT NULL,
  "offset"        bigint NOT NULL,
  payload         text NOT NULL,
  recorded_at     timestamptz NOT NULL,
  PRIMARY KEY (topic, event_id)
);
CREATE INDEX late_events_recorded_idx ON shop.late_events (event_timestamp);

-- Messages that are not valid events: one row per bad message, keyed by where it was read.
CREATE TABLE shop.ingest_errors (
  source      text NOT NULL,
  "partition" integer NOT NULL,
  "offset"    bigint NOT NULL,
  payload     text NOT NULL,
  error       text NOT NULL,
  recorded_at timestamptz NOT NULL,
  PRIMARY KEY (source, "partition", "offset")
);
CREATE INDEX ingest_errors_recorded_idx ON shop.ingest_errors (recorded_at);

-- Where each input partition has been read up to, committed in the same transaction
-- as the rows it produced. restart_offset is the oldest offset whose event is still
-- held in keyed state: a restart re-reads from there to rebuild state.
CREATE TABLE shop.source_positions (
  source           text NOT NULL,
  topic            text NOT NULL,
  "partition"      integer NOT NULL,
  next_offset      bigint NOT NULL,
  restart_offset   bigint NOT NULL,
  max_event_time   timestamptz,
  watermark        timestamptz,
  updated_at       timestamptz NOT NULL,
  PRIMARY KEY (source, topic, "partition")
);
