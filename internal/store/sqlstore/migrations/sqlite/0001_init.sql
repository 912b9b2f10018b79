-- 0001: the initial schema.

CREATE TABLE users (
  pool_id TEXT NOT NULL, username TEXT NOT NULL, sub TEXT NOT NULL UNIQUE,
  email TEXT NOT NULL, email_verified INTEGER NOT NULL, attributes TEXT NOT NULL,
  status TEXT NOT NULL, enabled INTEGER NOT NULL, password_hash TEXT NOT NULL,
  totp_secret BLOB, totp_pending BLOB, totp_enabled INTEGER NOT NULL, mfa_preferred INTEGER NOT NULL,
  groups_json TEXT NOT NULL, revoked_before BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  PRIMARY KEY (pool_id, username)
);
CREATE TABLE user_groups (
  pool_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, precedence INTEGER NOT NULL,
  role_arn TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (pool_id, name)
);
CREATE TABLE clients (
  client_id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, name TEXT NOT NULL, secret_hash BLOB, public INTEGER NOT NULL,
  flows TEXT NOT NULL, redirect_uris TEXT NOT NULL, logout_uris TEXT NOT NULL, scopes TEXT NOT NULL,
  exchange_audiences TEXT NOT NULL, jwks BLOB, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL
);
CREATE INDEX clients_pool ON clients (pool_id);
CREATE TABLE resource_servers (
  pool_id TEXT NOT NULL, identifier TEXT NOT NULL, name TEXT NOT NULL, scopes TEXT NOT NULL,
  PRIMARY KEY (pool_id, identifier)
);
CREATE TABLE refresh_tokens (
  id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, client_id TEXT NOT NULL, username TEXT NOT NULL, sub TEXT NOT NULL,
  family_id TEXT NOT NULL, scope TEXT NOT NULL, auth_time BIGINT NOT NULL, amr TEXT NOT NULL, origin_jti TEXT NOT NULL,
  created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT NOT NULL, successor_id TEXT NOT NULL,
  replay BLOB, revoked INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (pool_id, username);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
CREATE TABLE sessions (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, pool_id TEXT NOT NULL, client_id TEXT NOT NULL, username TEXT NOT NULL,
  data BLOB, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE TABLE one_time (k TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
CREATE TABLE counters (k TEXT PRIMARY KEY, n INTEGER NOT NULL, window_end BIGINT NOT NULL);
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY, pool_id TEXT NOT NULL, alg TEXT NOT NULL, private_sealed BLOB NOT NULL, public_jwk BLOB NOT NULL,
  created_at BIGINT NOT NULL, active_at BIGINT NOT NULL, retired_at BIGINT NOT NULL, publish_until BIGINT NOT NULL
);
CREATE INDEX signing_keys_pool ON signing_keys (pool_id, created_at);
CREATE TABLE codes (
  k TEXT PRIMARY KEY, code_hash BLOB NOT NULL, attempts INTEGER NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL
);
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT, to_addr TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL
);
CREATE TABLE audit_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, seq BIGINT NOT NULL, time BIGINT NOT NULL, component TEXT NOT NULL,
  action TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL, explanation TEXT NOT NULL, pool_id TEXT NOT NULL,
  sub TEXT NOT NULL, username TEXT NOT NULL, client_id TEXT NOT NULL, actor_chain TEXT NOT NULL, identity_id TEXT NOT NULL,
  role TEXT NOT NULL, resource TEXT NOT NULL, request_id TEXT NOT NULL, trace_id TEXT NOT NULL, source_ip TEXT NOT NULL,
  prev_hash BLOB, hash BLOB, UNIQUE (stream, seq)
);
CREATE INDEX audit_request ON audit_events (request_id);
CREATE INDEX audit_sub ON audit_events (sub);
CREATE INDEX audit_time ON audit_events (time);
