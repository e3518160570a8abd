-- The reports' summary rows (issue 17): each UK month's tallies per specialty and
-- grouping, computed once and kept while the month's data is unchanged. Every write to a
-- case, session, attendance or triage decision bumps its month's generation in the same
-- transaction (triggers below, so no write path can forget), as does any change to the
-- bank holidays (the working-day counts use them); a cached month is used only while its
-- generation is the month's current one, and is computed again otherwise.

CREATE TABLE report_months (
    specialty   TEXT NOT NULL,
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ NOT NULL,
    generation  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (specialty, starts_at)
);

CREATE TABLE report_cache (
    specialty   TEXT NOT NULL,
    starts_at   TIMESTAMPTZ NOT NULL,
    grouping    TEXT NOT NULL CHECK (grouping IN ('month', 'practice')),
    generation  BIGINT NOT NULL,
    tallies     TEXT NOT NULL,
    PRIMARY KEY (specialty, starts_at, grouping)
);

-- The month of session `sid` changed.
CREATE FUNCTION report_session_changed(sid UUID) RETURNS void AS $$
    UPDATE report_months m SET generation = m.generation + 1
    FROM sessions s
    WHERE s.id = sid AND m.specialty = s.specialty
      AND s.starts_at >= m.starts_at AND s.starts_at < m.ends_at;
$$ LANGUAGE sql;

-- A row with a `session_id` (cases, attendance) changed.
CREATE FUNCTION report_row_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN PERFORM report_session_changed(OLD.session_id); END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.session_id <> OLD.session_id) THEN
        PERFORM report_session_changed(NEW.session_id);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER report_cases AFTER INSERT OR UPDATE OR DELETE ON cases
    FOR EACH ROW EXECUTE FUNCTION report_row_changed();
CREATE TRIGGER report_attendance AFTER INSERT OR UPDATE OR DELETE ON attendance
    FOR EACH ROW EXECUTE FUNCTION report_row_changed();

-- A triage decision was recorded on a case.
CREATE FUNCTION report_triage_changed() RETURNS trigger AS $$
BEGIN
    PERFORM report_session_changed((SELECT c.session_id FROM cases c WHERE c.id = NEW.case_id));
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER report_triage AFTER INSERT ON triage_decisions
    FOR EACH ROW EXECUTE FUNCTION report_triage_changed();

-- A session was added, changed (state, start, quorum) or removed: its old and new month.
CREATE FUNCTION report_sessions_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE report_months m SET generation = m.generation + 1
        WHERE m.specialty = OLD.specialty AND OLD.starts_at >= m.starts_at AND OLD.starts_at < m.ends_at;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE report_months m SET generation = m.generation + 1
        WHERE m.specialty = NEW.specialty AND NEW.starts_at >= m.starts_at AND NEW.starts_at < m.ends_at;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER report_sessions AFTER INSERT OR UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION report_sessions_changed();

-- The bank holidays changed: every month's working-day counts may have.
CREATE FUNCTION report_holidays_changed() RETURNS trigger AS $$
BEGIN
    UPDATE report_months SET generation = generation + 1;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER report_holidays AFTER INSERT OR UPDATE OR DELETE ON bank_holidays
    FOR EACH STATEMENT EXECUTE FUNCTION report_holidays_changed();
