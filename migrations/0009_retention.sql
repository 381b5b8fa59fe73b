-- Retention (RETENTION_* settings): late events are deleted by when they were recorded, as
-- ingest errors and engine samples are; this index makes that a range scan.
CREATE INDEX late_events_recorded_at_idx ON shop.late_events (recorded_at);
