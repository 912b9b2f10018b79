-- 0004: the indexes that find a request's or a subject's events lead with
-- the row's bucket, id >> 12 (4096 consecutive rows). Keyed by request id
-- or subject alone, every event landed on a random page of its index:
-- with many users, or request ids that callers chose, a batch of events
-- rewrote hundreds of index pages and an event cost 5 times what it costs
-- with one user. Within the newest bucket the pages a batch touches are
-- few and stay cached. A lookup seeks once per bucket (ListAudit).
-- An empty table (a new database) gets them here at once; a table with
-- events gets them from 0005, built CONCURRENTLY while replicas write.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM audit_events) THEN
    DROP INDEX IF EXISTS audit_request;
    DROP INDEX IF EXISTS audit_sub;
    CREATE INDEX audit_request_bucket ON audit_events ((id >> 12), request_id);
    CREATE INDEX audit_sub_bucket ON audit_events ((id >> 12), sub);
  END IF;
END $$;
