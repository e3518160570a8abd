-- The reports' summary rows (issue 17): each UK month's tallies per specialty and
-- grouping, computed once and kept while the month's data is unchanged. Every write to a
-- case, session, attendance or triage decision bumps its month's generation in the same
-- transaction (triggers below, so no write path can forget), as does any change to the
-- bank holidays (the working-day counts use them); a cached month is used only while its
-- generation is the month's current one, and is computed again otherwise.

CREATE TABLE report_months (
    specialty   TEXT NOT NULL,
    starts_at   TEXT NOT NULL,
    ends_at     TEXT NOT NULL,
    generation  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (specialty, starts_at)
);

CREATE TABLE report_cache (
    specialty   TEXT NOT NULL,
    starts_at   TEXT NOT NULL,
    grouping    TEXT NOT NULL CHECK (grouping IN ('month', 'practice')),
    generation  BIGINT NOT NULL,
    tallies     TEXT NOT NULL,
    PRIMARY KEY (specialty, starts_at, grouping)
);

-- A row with a `session_id` (cases, attendance) changed: its session's month.
CREATE TRIGGER report_cases_insert AFTER INSERT ON cases BEGIN
    UPDATE report_months SET generation = generation + 1
    WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.id = NEW.session_id AND s.specialty = report_months.specialty
                  AND s.starts_at >= report_months.starts_at AND s.starts_at < report_months.ends_at);
END;
CREATE TRIGGER report_cases_update AFTER UPDATE ON cases BEGIN
    UPDATE report_months SET generation = generation + 1
    WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.id = OLD.session_id AND s.specialty = report_months.specialty
                  AND s.starts_at >= report_months.starts_at AND s.starts_at < report_months.ends_at);
    UPDATE report_months SET generation = generation + 1
    WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.id = NEW.session_id AND s.specialty = report_months.specialty
                  AND s.starts_at >= report_months.starts_at AND s.starts_at < report_months.ends_at);
END;
CREATE TRIGGER report_cases_delete AFTER DELETE ON cases BEGIN
    UPDATE report_months SET generation = generation + 1
    WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.id = OLD.session_id AND s.specialty = report_months.specialty
                  AND s.starts_at >= report_months.starts_at AND s.starts_at < report_months.ends_at);
END;
CREATE TRIGGER report_attendance_insert AFTER INSERT ON attendance BEGIN
    UPDATE report_months SET generation = generation + 1
    WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.id = NEW.session_id AND s.specialty = report_months.specialty
                  AND s.starts_at >= report_months.starts_at AND s.starts_at < report_months.ends_at);
END;
CREATE TRIGGER report_attendance_update AFTER UPDATE ON attendance BEGIN
    UPDATE report_months SET generation = generation + 1
    WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.id = OLD.session_id AND s.specialty = report_months.specialty
                  AND s.starts_at >= report_months.starts_at AND s.starts_at < report_months.ends_at);
    UPDATE report_months SET generation = generation + 1
    WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.id = NEW.session_id AND s.specialty = report_months.specialty
                  AND s.starts_at >= report_months.starts_at AND s.starts_at < report_months.ends_at);
END;
CREATE TRIGGER report_attendance_delete AFTER DELETE ON attendance BEGIN
    UPDATE report_months SET generation = generation + 1
    WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.id = OLD.session_id AND s.specialty = report_months.specialty
                  AND s.starts_at >= report_months.starts_at AND s.starts_at < report_months.ends_at);
END;

-- A triage decision was recorded on a case.
CREATE TRIGGER report_triage_insert AFTER INSERT ON triage_decisions BEGIN
    UPDATE report_months SET generation = generation + 1
    WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.id = (SELECT c.session_id FROM cases c WHERE c.id = NEW.case_id) AND s.specialty = report_months.specialty
                  AND s.starts_at >= report_months.starts_at AND s.starts_at < report_months.ends_at);
END;

-- A session was added, changed (state, start, quorum) or removed: its old and new month.
CREATE TRIGGER report_sessions_insert AFTER INSERT ON sessions BEGIN
    UPDATE report_months SET generation = generation + 1
    WHERE specialty = NEW.specialty AND NEW.starts_at >= starts_at AND NEW.starts_at < ends_at;
END;
CREATE TRIGGER report_sessions_update AFTER UPDATE ON sessions BEGIN
    UPDATE report_months SET generation = generation + 1
    WHERE specialty = OLD.specialty AND OLD.starts_at >= starts_at AND OLD.starts_at < ends_at;
    UPDATE report_months SET generation = generation + 1
    WHERE specialty = NEW.specialty AND NEW.starts_at >= starts_at AND NEW.starts_at < ends_at;
END;
CREATE TRIGGER report_sessions_delete AFTER DELETE ON sessions BEGIN
    UPDATE report_months SET generation = generation + 1
    WHERE specialty = OLD.specialty AND OLD.starts_at >= starts_at AND OLD.starts_at < ends_at;
END;

-- The bank holidays changed: every month's working-day counts may have.
CREATE TRIGGER report_holidays_insert AFTER INSERT ON bank_holidays BEGIN
    UPDATE report_months SET generation = generation + 1;
END;
CREATE TRIGGER report_holidays_update AFTER UPDATE ON bank_holidays BEGIN
    UPDATE report_months SET generation = generation + 1;
END;
CREATE TRIGGER report_holidays_delete AFTER DELETE ON bank_holidays BEGIN
    UPDATE report_months SET generation = generation + 1;
END;
