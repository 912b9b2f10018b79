-- 0002: identity-pool identities, one per (pool, login).
CREATE TABLE identities (
  identity_id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, login TEXT NOT NULL, created_at BIGINT NOT NULL,
  UNIQUE (pool_id, login)
);
