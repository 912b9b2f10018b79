-- writ:no-transaction
-- 0005: the bucketed audit indexes of 0004 for a table that already holds
-- events, built CONCURRENTLY, outside a transaction, so that replicas
-- keep writing audit events meanwhile (a build waits for every older
-- transaction in the database first). Where 0004 built them, every
-- statement here finds its work done and returns at once. Each may run
-- again after a crash part-way: an index a crashed build left invalid is
-- dropped first (briefly locking the table), then built again.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('audit_request_bucket') AND NOT indisvalid) THEN
    DROP INDEX audit_request_bucket;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('audit_sub_bucket') AND NOT indisvalid) THEN
    DROP INDEX audit_sub_bucket;
  END IF;
END $$;
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_request_bucket ON audit_events ((id >> 12), request_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_sub_bucket ON audit_events ((id >> 12), sub);
DROP INDEX CONCURRENTLY IF EXISTS audit_request;
DROP INDEX CONCURRENTLY IF EXISTS audit_sub;
