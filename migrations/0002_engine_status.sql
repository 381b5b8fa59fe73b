-- A sample of the engine's health every few seconds, for Grafana's engine-health panels.
CREATE TABLE shop.engine_status (
  sampled_at              timestamptz PRIMARY KEY,
  watermark               timestamptz,
  watermark_delay_seconds double precision,
  events_per_second       double precision NOT NULL,
  consumer_lag            bigint NOT NULL,
  events_total            bigint NOT NULL,
  late_events_total       bigint NOT NULL,
  ingest_errors_total     bigint NOT NULL,
  rows_written_total      bigint NOT NULL,
  users_held              bigint NOT NULL,
  clicks_held             bigint NOT NULL,
  pending_checkouts       bigint NOT NULL
);
