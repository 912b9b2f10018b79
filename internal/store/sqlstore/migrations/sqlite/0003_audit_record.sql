-- 0003: an audit row keeps as columns what queries select by (and the
-- chain's stream and sequence number) and the rest of the event in one JSON
-- object, record: appending a row binds 8 values instead of 21, which is
-- most of what the audit trail costs a request. Existing rows move over
-- unchanged in content, so their hash chains still verify (an actor chain
-- that is not JSON, which only an edit makes, becomes [] and fails them).
CREATE TABLE audit_events_new (
  id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, seq BIGINT NOT NULL, time BIGINT NOT NULL,
  component TEXT NOT NULL, outcome TEXT NOT NULL, sub TEXT NOT NULL, request_id TEXT NOT NULL, record TEXT NOT NULL,
  UNIQUE (stream, seq)
);
INSERT INTO audit_events_new (id, stream, seq, time, component, outcome, sub, request_id, record)
SELECT id, stream, seq, time, component, outcome, sub, request_id, json_object(
    'action', action, 'reason', reason, 'explanation', explanation, 'pool_id', pool_id, 'username', username,
    'client_id', client_id, 'actor_chain', json(CASE WHEN json_valid(actor_chain) AND actor_chain != 'null' THEN actor_chain ELSE '[]' END),
    'identity_id', identity_id, 'role', role, 'resource', resource, 'trace_id', trace_id, 'source_ip', source_ip,
    'prev_hash', lower(hex(prev_hash)), 'hash', lower(hex(hash)),
    -- SQLite kept text that is not UTF-8 as it came, and the chain hashed
    -- those bytes. JSON cannot carry them, so their hex goes along.
    'raw', json_object('action', hex(action), 'reason', hex(reason), 'explanation', hex(explanation),
      'pool_id', hex(pool_id), 'username', hex(username), 'client_id', hex(client_id), 'identity_id', hex(identity_id),
      'role', hex(role), 'resource', hex(resource), 'trace_id', hex(trace_id), 'source_ip', hex(source_ip)))
FROM audit_events ORDER BY id;
DROP TABLE audit_events;
ALTER TABLE audit_events_new RENAME TO audit_events;
CREATE INDEX audit_request ON audit_events (request_id);
CREATE INDEX audit_sub ON audit_events (sub);
CREATE INDEX audit_time ON audit_events (time);
