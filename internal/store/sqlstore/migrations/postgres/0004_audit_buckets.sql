-- writ:no-transaction
-- 0004: the indexes that find a request's or a subject's events lead with
-- the row's bucket, id >> 12 (4096 consecutive rows). Keyed by request id
-- or subject alone, every event landed on a random page of its index:
-- with many users, or request ids that callers chose, a batch of events
-- rewrote hundreds of index pages and an event cost 5 times what it costs
-- with one user. Within the newest bucket the pages a batch touches are
-- few and stay cached. A lookup seeks once per bucket (ListAudit).
-- The new indexes are built CONCURRENTLY, outside a transaction, so that
-- replicas keep writing audit events meanwhile. Each step may run again
-- after a crash part-way (a build a crash interrupted leaves an invalid
-- index, dropped first).
DROP INDEX CONCURRENTLY IF EXISTS audit_request_bucket;
CREATE INDEX CONCURRENTLY audit_request_bucket ON audit_events ((id >> 12), request_id);
DROP INDEX CONCURRENTLY IF EXISTS audit_sub_bucket;
CREATE INDEX CONCURRENTLY audit_sub_bucket ON audit_events ((id >> 12), sub);
DROP INDEX CONCURRENTLY IF EXISTS audit_request;
DROP INDEX CONCURRENTLY IF EXISTS audit_sub;
ALTER INDEX audit_request_bucket RENAME TO audit_request;
ALTER INDEX audit_sub_bucket RENAME TO audit_sub;
