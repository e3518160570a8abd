-- The transactional outbox: messages are written in the same transaction as the change
-- that causes them and delivered later by the mail worker, with retries.
CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    recipients       TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    calendar         TEXT,
    created_at       TEXT NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    sent_at          TEXT
);
CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE sent_at IS NULL;
