-- Tasks (ARCHITECTURE: Tasks): task n owns partition n of every input topic. Taking a task
-- bumps its epoch here; every sink transaction checks, under a share lock, that the epochs
-- it writes for are still current, so a stale owner's late batch writes nothing.
CREATE TABLE shop.task_owners (
  source     text NOT NULL,
  task       integer NOT NULL,
  epoch      bigint NOT NULL,
  owner      text NOT NULL,
  claimed_at timestamptz NOT NULL,
  PRIMARY KEY (source, task)
);

-- Positions per job: each job's sink commits its own progress; a partition restarts from
-- the oldest restart offset of any job. Existing rows are the attribution job's.
ALTER TABLE shop.source_positions ADD COLUMN job text NOT NULL DEFAULT 'attribution';
ALTER TABLE shop.source_positions ADD COLUMN task integer;
ALTER TABLE shop.source_positions ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE shop.source_positions DROP CONSTRAINT source_positions_pkey;
ALTER TABLE shop.source_positions ADD PRIMARY KEY (source, job, topic, "partition");

-- An ingest error is one message: where it was read (the source, or the file for a replay),
-- its coordinates and its bytes. A replay's line numbers, Kafka offsets and a recreated
-- topic's reused offsets no longer collide; a message recorded twice is one row.
ALTER TABLE shop.ingest_errors ADD COLUMN input text NOT NULL DEFAULT '';
ALTER TABLE shop.ingest_errors ADD COLUMN payload_md5 text GENERATED ALWAYS AS (md5(payload)) STORED;
ALTER TABLE shop.ingest_errors DROP CONSTRAINT ingest_errors_pkey;
ALTER TABLE shop.ingest_errors ADD PRIMARY KEY (input, source, "partition", "offset", payload_md5);
