-- 0007: a group keeps when it was last changed (GetGroup's
-- LastModifiedDate); groups so far take their creation time. A group's
-- precedence may now be unset, Cognito's default, which ranks after every
-- value: precedence_set is 0 then, and precedence holds 2147483647, the
-- last value, so that a replica of the previous version, still running
-- during an upgrade, reads such a group as ranking last and its updates
-- pass its checks. The previous version's rows get updated_at 0 (read as
-- the creation time) and precedence_set 1, as its precedences are set.
ALTER TABLE user_groups ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE user_groups ADD COLUMN precedence_set INTEGER NOT NULL DEFAULT 1;
UPDATE user_groups SET updated_at = created_at;
