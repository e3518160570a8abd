-- no-transaction
-- Before the meeting (issue 15): the referral proforma, triage, per-specialty proforma
-- rules and standard plans, the agenda's publication time, invitations and guests.
-- SQLite cannot change a CHECK constraint in place: the cases table is rebuilt (the
-- documented twelve steps), with foreign keys off and in one transaction of its own.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE cases_rebuilt (
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
    state              TEXT NOT NULL CHECK (state IN ('awaiting_triage', 'returned', 'booked',
        'listed', 'in_discussion', 'discussed', 'outcome_signed', 'deferred', 'withdrawn')),
    booked_at          TEXT NOT NULL,
    free_text_identifies_patient INTEGER NOT NULL DEFAULT 1
        CHECK (free_text_identifies_patient IN (0, 1)),
    idempotency_key    TEXT,
    moved_from         TEXT REFERENCES cases(id),
    needs_rebooking    INTEGER NOT NULL DEFAULT 0 CHECK (needs_rebooking IN (0, 1)),
    agenda_position    INTEGER,
    follow_up_of       TEXT REFERENCES cases(id),
    -- The proforma. Cases booked before this release have none (NULL).
    referral_received_on TEXT,
    referral_source    TEXT CHECK (referral_source IN ('gp', 'first_contact_practitioner',
        'physiotherapist', 'extended_scope_practitioner', 'consultant', 'other')),
    -- symptom_weeks, conservative_care, imaging, medication_tried, start_back, patient_agrees (JSON).
    proforma           TEXT,
    -- When the case last went to triage, and the latest return's reason and note.
    submitted_at       TEXT,
    return_reason      TEXT,
    return_note        TEXT,
    -- The standard plan a listed case follows (a code of its specialty's standard plans).
    standard_plan      TEXT
);
INSERT INTO cases_rebuilt (id, session_id, referrer_id, nhs_number, given_name, family_name,
    date_of_birth, sex, gp_practice_code, clinical_question, history, urgency, body_site, state,
    booked_at, free_text_identifies_patient, idempotency_key, moved_from, needs_rebooking,
    agenda_position, follow_up_of)
SELECT id, session_id, referrer_id, nhs_number, given_name, family_name, date_of_birth, sex,
    gp_practice_code, clinical_question, history, urgency, body_site, state, booked_at,
    free_text_identifies_patient, idempotency_key, moved_from, needs_rebooking, agenda_position,
    follow_up_of
FROM cases;
DROP TABLE cases;
ALTER TABLE cases_rebuilt RENAME TO cases;
CREATE INDEX cases_session ON cases(session_id);
CREATE INDEX cases_nhs_number ON cases(nhs_number);
CREATE UNIQUE INDEX cases_patient_once_per_session ON cases(session_id, nhs_number)
    WHERE state NOT IN ('withdrawn', 'deferred');
CREATE UNIQUE INDEX cases_idempotency ON cases(referrer_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX cases_referrer ON cases(referrer_id, booked_at);
CREATE INDEX cases_awaiting_triage ON cases(submitted_at) WHERE state = 'awaiting_triage';

-- Every triage decision, for the queue's history and the reports.
CREATE TABLE triage_decisions (
    id            TEXT PRIMARY KEY,
    case_id       TEXT NOT NULL REFERENCES cases(id),
    specialty     TEXT NOT NULL REFERENCES specialties(slug),
    decision      TEXT NOT NULL CHECK (decision IN ('accept', 'return', 'list')),
    reason        TEXT,
    note          TEXT,
    standard_plan TEXT,
    submitted_at  TEXT NOT NULL,
    decided_at    TEXT NOT NULL,
    decided_by    TEXT NOT NULL REFERENCES users(id)
);
CREATE INDEX triage_decisions_decided ON triage_decisions(decided_at);

-- Which proforma fields a specialty requires, and its standard plans (JSON).
ALTER TABLE specialties ADD COLUMN proforma_required TEXT NOT NULL DEFAULT '["start_back"]';
ALTER TABLE specialties ADD COLUMN standard_plans TEXT NOT NULL DEFAULT '[]';
UPDATE specialties SET standard_plans = '[{"code": "continue_current_care", "title": "Continue current care", "plan": "Continue the current first-contact and physiotherapy-led management; the referrer reviews progress and re-refers if symptoms change."}, {"code": "discharge_self_management", "title": "Discharge with self-management", "plan": "Discharge to self-management with written advice; the GP or referrer re-refers if symptoms change."}]';

-- When the agenda was published (the publication rule and late additions).
ALTER TABLE sessions ADD COLUMN published_at TEXT;

-- Where a guest comes from, shown to the chair in the lobby.
ALTER TABLE users ADD COLUMN organisation TEXT;

-- People invited to a session besides its chair, referrers and specialty members.
CREATE TABLE session_invitations (
    session_id    TEXT NOT NULL REFERENCES sessions(id),
    user_id       TEXT NOT NULL REFERENCES users(id),
    kind          TEXT NOT NULL CHECK (kind IN ('learner', 'guest', 'trainee')),
    invited_by    TEXT NOT NULL REFERENCES users(id),
    invited_at    TEXT NOT NULL,
    withdrawn_at  TEXT,
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX session_invitations_user ON session_invitations(user_id);

PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
