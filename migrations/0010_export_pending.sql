-- A late checkout written after its day was exported makes that day's files stale (SPEC §6:
-- a day's export is its checkouts). The sink marks the hours of the checkouts it writes, in
-- the same transaction as the rows (beside the rollup's marks), with that transaction's id;
-- an export run records the snapshot it read the day under. A day is exported again while
-- a mark of one of its hours is not visible in its latest succeeded run's snapshot (exact:
-- no clock is compared). A mark goes once every day it touches has been exported after it.
CREATE TABLE shop.export_pending (
  hour      timestamptz PRIMARY KEY,
  marked_at timestamptz NOT NULL,
  xact      xid8 NOT NULL DEFAULT pg_current_xact_id()
);

ALTER TABLE shop.export_runs ADD COLUMN snapshot pg_snapshot;
