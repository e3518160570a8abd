-- Foundation schema (SQLite): specialties, accounts, refresh tokens, schedule, cases and
-- the append-only, hash-chained audit log. Times are RFC 3339 UTC text; ids are UUID text.

CREATE TABLE specialties (
    slug        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
INSERT INTO specialties (slug, name, created_at) VALUES
    ('rheumatology', 'Rheumatology', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('spinal', 'Spinal', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('pain', 'Pain', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('practitioner', 'consultant', 'trainee', 'coordinator')),
    password_hash  TEXT NOT NULL,
    active         INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at     TEXT NOT NULL
);

CREATE TABLE user_specialties (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    specialty  TEXT NOT NULL REFERENCES specialties(slug),
    PRIMARY KEY (user_id, specialty)
);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    issued_at   TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    revoked_at  TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

CREATE TABLE series (
    id                    TEXT PRIMARY KEY,
    specialty             TEXT NOT NULL REFERENCES specialties(slug),
    title                 TEXT NOT NULL,
    first_date            TEXT NOT NULL,
    local_time            TEXT NOT NULL,
    weeks                 INTEGER NOT NULL CHECK (weeks > 0),
    duration_minutes      INTEGER NOT NULL CHECK (duration_minutes > 0),
    case_capacity         INTEGER NOT NULL CHECK (case_capacity > 0),
    minutes_per_case      INTEGER NOT NULL CHECK (minutes_per_case > 0),
    booking_cutoff_hours  INTEGER NOT NULL CHECK (booking_cutoff_hours >= 0),
    chair_id              TEXT NOT NULL REFERENCES users(id),
    teaching              INTEGER NOT NULL CHECK (teaching IN (0, 1)),
    created_at            TEXT NOT NULL
);

CREATE TABLE sessions (
    id                    TEXT PRIMARY KEY,
    series_id             TEXT REFERENCES series(id),
    specialty             TEXT NOT NULL REFERENCES specialties(slug),
    title                 TEXT NOT NULL,
    starts_at             TEXT NOT NULL,
    duration_minutes      INTEGER NOT NULL CHECK (duration_minutes > 0),
    case_capacity         INTEGER NOT NULL CHECK (case_capacity > 0),
    booked                INTEGER NOT NULL DEFAULT 0,
    minutes_per_case      INTEGER NOT NULL CHECK (minutes_per_case > 0),
    booking_cutoff_hours  INTEGER NOT NULL CHECK (booking_cutoff_hours >= 0),
    chair_id              TEXT NOT NULL REFERENCES users(id),
    teaching              INTEGER NOT NULL CHECK (teaching IN (0, 1)),
    state                 TEXT NOT NULL CHECK (state IN ('scheduled', 'published', 'live', 'closed', 'cancelled')),
    created_at            TEXT NOT NULL,
    CHECK (booked BETWEEN 0 AND case_capacity)
);
CREATE INDEX sessions_specialty_starts ON sessions(specialty, starts_at);

CREATE TABLE cases (
    id                 TEXT PRIMARY KEY,
    session_id         TEXT NOT NULL REFERENCES sessions(id),
    referrer_id        TEXT NOT NULL REFERENCES users(id),
    nhs_number         TEXT NOT NULL CHECK (length(nhs_number) = 10),
    given_name         TEXT NOT NULL,
    family_name        TEXT NOT NULL,
    date_of_birth      TEXT NOT NULL,
    sex                TEXT NOT NULL CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    gp_practice_code   TEXT NOT NULL,
    clinical_question  TEXT NOT NULL,
    history            TEXT NOT NULL,
    urgency            TEXT NOT NULL CHECK (urgency IN ('routine', 'urgent')),
    body_site          TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('booked', 'listed', 'in_discussion', 'discussed', 'outcome_signed', 'deferred', 'withdrawn')),
    booked_at          TEXT NOT NULL
);
CREATE INDEX cases_session ON cases(session_id);
CREATE INDEX cases_nhs_number ON cases(nhs_number);
CREATE UNIQUE INDEX cases_patient_once_per_session ON cases(session_id, nhs_number)
    WHERE state NOT IN ('withdrawn', 'deferred');

CREATE TABLE audit_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at  TEXT NOT NULL,
    actor_id     TEXT,
    action       TEXT NOT NULL,
    record_type  TEXT NOT NULL,
    record_id    TEXT,
    client_addr  TEXT,
    details      TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_events_actor ON audit_events(actor_id);
CREATE INDEX audit_events_record ON audit_events(record_type, record_id);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
