-- Case outcomes (DESIGN §3 "Outcome"): one row per version. A version is drafted, then
-- signed; a signed row never changes again and no row is ever deleted (the triggers
-- below refuse it). A correction is a new, already signed version that supersedes the
-- previous one with a reason. The body is the parsed outcome as JSON text.
CREATE TABLE outcome_versions (
    case_id           TEXT NOT NULL REFERENCES cases(id),
    version           INTEGER NOT NULL CHECK (version > 0),
    body              TEXT NOT NULL,
    author_id         TEXT NOT NULL REFERENCES users(id),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    signed_by         TEXT REFERENCES users(id),
    signed_at         TEXT,
    amendment_reason  TEXT,
    supersedes        INTEGER,
    PRIMARY KEY (case_id, version),
    CHECK ((signed_by IS NULL) = (signed_at IS NULL)),
    CHECK (supersedes IS NULL OR supersedes = version - 1),
    CHECK ((amendment_reason IS NULL) = (supersedes IS NULL))
);

CREATE TRIGGER outcome_versions_signed_are_immutable BEFORE UPDATE ON outcome_versions
WHEN OLD.signed_at IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'signed outcome versions are immutable');
END;
CREATE TRIGGER outcome_versions_no_delete BEFORE DELETE ON outcome_versions
BEGIN
    SELECT RAISE(ABORT, 'outcome versions are never deleted');
END;

-- A case booked by a signed outcome's re-discuss follow-up points at the original.
ALTER TABLE cases ADD COLUMN follow_up_of TEXT REFERENCES cases(id);

-- An optional HTML alternative for outgoing mail.
ALTER TABLE outbox ADD COLUMN html TEXT;
