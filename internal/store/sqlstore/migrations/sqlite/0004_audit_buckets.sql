-- 0004: the indexes that find a request's or a subject's events lead with
-- the row's bucket, id >> 12 (4096 consecutive rows). Keyed by request id
-- or subject alone, every event landed on a random page of its index:
-- with many users, or request ids that callers chose, a batch of events
-- rewrote hundreds of index pages and an event cost 5 times what it costs
-- with one user. Within the newest bucket the pages a batch touches are
-- few and stay cached. A lookup seeks once per bucket (ListAudit).
DROP INDEX audit_request;
DROP INDEX audit_sub;
CREATE INDEX audit_request ON audit_events ((id >> 12), request_id);
CREATE INDEX audit_sub ON audit_events ((id >> 12), sub);
