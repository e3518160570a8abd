-- Decisions as tracked actions (issue 16): each investigation and referral of a signed
-- outcome becomes an action with an owner, a due date and a status; each specialty sets
-- the days from signing to the due date by urgency.

ALTER TABLE specialties ADD COLUMN action_due_days TEXT NOT NULL
    DEFAULT '{"urgent": 14, "routine": 42}';

CREATE TABLE actions (
    id                   TEXT PRIMARY KEY,
    case_id              TEXT NOT NULL REFERENCES cases(id),
    -- The outcome version that first asked for it.
    outcome_version      INTEGER NOT NULL,
    kind                 TEXT NOT NULL CHECK (kind IN ('investigation', 'referral')),
    -- From the vocabularies only (e.g. 'MRI (lower back)'): never free text.
    what                 TEXT NOT NULL,
    urgency              TEXT NOT NULL CHECK (urgency IN ('routine', 'urgent')),
    owner_id             TEXT NOT NULL REFERENCES users(id),
    due_on               TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('requested', 'booked', 'done',
        'result_received', 'closed', 'cancelled')),
    result_summary       TEXT,
    result_attachment_id TEXT REFERENCES attachments(id),
    cancel_reason        TEXT,
    rediscuss_case_id    TEXT REFERENCES cases(id),
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    FOREIGN KEY (case_id, outcome_version) REFERENCES outcome_versions(case_id, version),
    CHECK (status <> 'cancelled' OR cancel_reason IS NOT NULL)
);
CREATE INDEX actions_case ON actions(case_id, created_at);
CREATE INDEX actions_owner ON actions(owner_id, due_on);
CREATE INDEX actions_open_due ON actions(due_on) WHERE status NOT IN ('closed', 'cancelled');
