-- Real-time recommendations (SPEC §7): each user's current top 10, best first, rewritten
-- within a second of the user's events by the recommender job.
CREATE TABLE shop.user_recommendations (
  user_id    text NOT NULL,
  rank       smallint NOT NULL CHECK (rank BETWEEN 1 AND 10),
  product_id text NOT NULL,
  score      double precision NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (user_id, rank)
);

-- The recommender's state per task (its model and its users' recent events), written with
-- the job's positions in one transaction, so a restart resumes from it instead of re-reading
-- the input. Fenced like every sink by shop.task_owners.
CREATE TABLE shop.recommender_state (
  source     text NOT NULL,
  task       integer NOT NULL,
  epoch      bigint NOT NULL,
  taken_at   timestamptz NOT NULL,
  state      bytea NOT NULL,
  PRIMARY KEY (source, task)
);
