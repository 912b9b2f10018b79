-- 0006: a group's precedence may be unset (NULL), Cognito's default,
-- which ranks after every value; and a group keeps when it was last
-- changed (GetGroup's LastModifiedDate). Groups created so far keep their
-- precedence, and their creation time as the last change.
CREATE TABLE user_groups_new (
  pool_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, precedence INTEGER,
  role_arn TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (pool_id, name)
);
INSERT INTO user_groups_new (pool_id, name, description, precedence, role_arn, created_at, updated_at)
SELECT pool_id, name, description, precedence, role_arn, created_at, created_at FROM user_groups;
DROP TABLE user_groups;
ALTER TABLE user_groups_new RENAME TO user_groups;
