-- Which transaction last inserted or updated each dimension row, for the engine's dimension
-- refresh (src/jobs/Dimensions.ts). updated_at is the writing transaction's start time (or
-- a clock read inside it), so a transaction that began before a refresh and commits after
-- it carries an updated_at older than that refresh: re-reading `WHERE updated_at > since`
-- misses it forever. A transaction id is compared with a snapshot instead: a refresh reads
-- the rows whose change_xid was not yet visible in the previous refresh's snapshot.
--
-- xid8 (64 bits, never wraps) and pg_current_xact_id() need PostgreSQL 13. The trigger sets
-- the column on every insert and update, whatever the statement says; the default covers
-- writes with triggers disabled (session_replication_role = replica) and gives the rows that
-- exist today the id of this migration's transaction.
CREATE FUNCTION shop.set_change_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.change_xid := pg_current_xact_id();
  RETURN NEW;
END
$$;

ALTER TABLE shop.users ADD COLUMN change_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX users_change_xid_idx ON shop.users (change_xid);
CREATE TRIGGER users_set_change_xid BEFORE INSERT OR UPDATE ON shop.users
  FOR EACH ROW EXECUTE FUNCTION shop.set_change_xid();

ALTER TABLE shop.products ADD COLUMN change_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX products_change_xid_idx ON shop.products (change_xid);
CREATE TRIGGER products_set_change_xid BEFORE INSERT OR UPDATE ON shop.products
  FOR EACH ROW EXECUTE FUNCTION shop.set_change_xid();
