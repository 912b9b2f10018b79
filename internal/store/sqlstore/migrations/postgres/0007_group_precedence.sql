-- 0007: a group's precedence may be unset (NULL), Cognito's default,
-- which ranks after every value; and a group keeps when it was last
-- changed (GetGroup's LastModifiedDate). Groups created so far keep their
-- precedence, and their creation time as the last change.
ALTER TABLE user_groups ALTER COLUMN precedence DROP NOT NULL;
ALTER TABLE user_groups ADD COLUMN updated_at BIGINT;
UPDATE user_groups SET updated_at = created_at;
ALTER TABLE user_groups ALTER COLUMN updated_at SET NOT NULL;
