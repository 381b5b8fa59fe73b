-- The midnight export (SPEC §6): every run, by the schedule or by `export --date`, is a row,
-- inserted `running` before anything is written and set to `succeeded` (with its rows) or
-- `failed` (with the error) after. A day is exported when it has a succeeded run; a row left
-- `running` by a process that died is set `failed` by the next run that takes the lock.
CREATE TABLE shop.export_runs (
  id          bigserial PRIMARY KEY,
  day         date NOT NULL,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz,
  "rows"      bigint,
  status      text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  error       text,
  CHECK ((status = 'running') = (finished_at IS NULL)),
  CHECK (status <> 'succeeded' OR "rows" IS NOT NULL),
  CHECK (status <> 'failed' OR error IS NOT NULL)
);
CREATE INDEX export_runs_day_idx ON shop.export_runs (day, status);
