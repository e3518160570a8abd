-- Mentorship (DESIGN §3 "Mentorship", issue 7): contracts (a consultant's promised
-- minutes per week in one arm, for so many weeks a year, between two dates), logs of
-- mentorship delivered with their mentees and the cases discussed, and flags that put a
-- case on its arm's mentorship backlog until a log discusses it (or it is unflagged).
-- Dates are YYYY-MM-DD text (clinic days); times RFC 3339 UTC text; ids UUID text.
CREATE TABLE mentorship_contracts (
    id                TEXT PRIMARY KEY,
    consultant_id     TEXT NOT NULL REFERENCES users(id),
    specialty         TEXT NOT NULL REFERENCES specialties(slug),
    minutes_per_week  INTEGER NOT NULL CHECK (minutes_per_week > 0),
    weeks_per_year    INTEGER NOT NULL CHECK (weeks_per_year BETWEEN 1 AND 52),
    starts_on         TEXT NOT NULL,
    ends_on           TEXT,
    created_by        TEXT NOT NULL REFERENCES users(id),
    created_at        TEXT NOT NULL,
    CHECK (ends_on IS NULL OR ends_on >= starts_on)
);
CREATE INDEX mentorship_contracts_consultant ON mentorship_contracts(consultant_id, specialty);

CREATE TABLE mentorship_logs (
    id                TEXT PRIMARY KEY,
    consultant_id     TEXT NOT NULL REFERENCES users(id),
    specialty         TEXT NOT NULL REFERENCES specialties(slug),
    occurred_on       TEXT NOT NULL,
    duration_minutes  INTEGER NOT NULL CHECK (duration_minutes > 0),
    kind              TEXT NOT NULL CHECK (kind IN ('case_review', 'joint_assessment', 'teaching')),
    -- A JSON array of strings.
    learning_points   TEXT NOT NULL,
    created_at        TEXT NOT NULL
);
CREATE INDEX mentorship_logs_consultant ON mentorship_logs(consultant_id, occurred_on);
CREATE INDEX mentorship_logs_occurred ON mentorship_logs(occurred_on);

CREATE TABLE mentorship_log_mentees (
    log_id   TEXT NOT NULL REFERENCES mentorship_logs(id),
    user_id  TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (log_id, user_id)
);
CREATE INDEX mentorship_log_mentees_user ON mentorship_log_mentees(user_id);

CREATE TABLE mentorship_log_cases (
    log_id   TEXT NOT NULL REFERENCES mentorship_logs(id),
    case_id  TEXT NOT NULL REFERENCES cases(id),
    PRIMARY KEY (log_id, case_id)
);

CREATE TABLE mentorship_flags (
    id              TEXT PRIMARY KEY,
    case_id         TEXT NOT NULL REFERENCES cases(id),
    -- The arm whose backlog the case is on: its session's specialty when flagged.
    specialty       TEXT NOT NULL REFERENCES specialties(slug),
    flagged_by      TEXT NOT NULL REFERENCES users(id),
    flagged_at      TEXT NOT NULL,
    flagged_on      TEXT NOT NULL,
    cleared_at      TEXT,
    cleared_on      TEXT,
    cleared_by      TEXT REFERENCES users(id),
    cleared_by_log  TEXT REFERENCES mentorship_logs(id),
    CHECK ((cleared_at IS NULL) = (cleared_on IS NULL)),
    CHECK ((cleared_at IS NULL) = (cleared_by IS NULL))
);
-- A case is on the backlog at most once at a time.
CREATE UNIQUE INDEX mentorship_flags_open ON mentorship_flags(case_id) WHERE cleared_at IS NULL;
CREATE INDEX mentorship_flags_specialty ON mentorship_flags(specialty, flagged_on);
