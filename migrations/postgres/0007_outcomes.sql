-- Case outcomes (DESIGN §3 "Outcome"): one row per version. A version is drafted, then
-- signed; a signed row never changes again and no row is ever deleted (the triggers
-- below refuse it). A correction is a new, already signed version that supersedes the
-- previous one with a reason. The body is the parsed outcome as JSON text.
CREATE TABLE outcome_versions (
    case_id           UUID NOT NULL REFERENCES cases(id),
    version           INTEGER NOT NULL CHECK (version > 0),
    body              TEXT NOT NULL,
    author_id         UUID NOT NULL REFERENCES users(id),
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    signed_by         UUID REFERENCES users(id),
    signed_at         TIMESTAMPTZ,
    amendment_reason  TEXT,
    supersedes        INTEGER,
    PRIMARY KEY (case_id, version),
    CHECK ((signed_by IS NULL) = (signed_at IS NULL)),
    CHECK (supersedes IS NULL OR supersedes = version - 1),
    CHECK ((amendment_reason IS NULL) = (supersedes IS NULL))
);

CREATE FUNCTION outcome_versions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.signed_at IS NOT NULL THEN
            RAISE EXCEPTION 'signed outcome versions are immutable';
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'outcome versions are never deleted';
END
$$;
CREATE TRIGGER outcome_versions_guard_rows BEFORE UPDATE OR DELETE ON outcome_versions
    FOR EACH ROW EXECUTE FUNCTION outcome_versions_guard();
CREATE TRIGGER outcome_versions_no_truncate BEFORE TRUNCATE ON outcome_versions
    FOR EACH STATEMENT EXECUTE FUNCTION outcome_versions_guard();

-- A case booked by a signed outcome's re-discuss follow-up points at the original.
ALTER TABLE cases ADD COLUMN follow_up_of UUID REFERENCES cases(id);

-- An optional HTML alternative for outgoing mail.
ALTER TABLE outbox ADD COLUMN html TEXT;
