-- 0007: a group keeps when it was last changed (GetGroup's
-- LastModifiedDate); groups so far take their creation time. A group's
-- precedence may now be unset, Cognito's default, which ranks after every
-- value: it is stored as -1, so that the column stays NOT NULL and a
-- replica of the previous version, still running during an upgrade, reads
-- and writes the table as before (its rows get updated_at 0, read as the
-- creation time).
ALTER TABLE user_groups ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE user_groups SET updated_at = created_at;
