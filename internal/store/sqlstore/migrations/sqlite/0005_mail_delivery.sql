-- 0005: mail is delivered from the outbox. A request that mails a code
-- queues the message in the transaction that stores the code; a sender
-- (one per process, any replica) claims it, sends it over SMTP and marks
-- it done, retrying with backoff. Mail kept for `writ outbox` (no SMTP
-- server configured) has deliver = 0, as every earlier row had.
ALTER TABLE outbox ADD COLUMN deliver INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN done_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_waiting ON outbox (next_at) WHERE deliver = 1 AND done_at = 0;
