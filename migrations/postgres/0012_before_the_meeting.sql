-- Before the meeting (issue 15): the referral proforma, triage, per-specialty proforma
-- rules and standard plans, the agenda's publication time, invitations and guests.

-- Cases gain the triage states; `booked` stays the state of an accepted case.
ALTER TABLE cases DROP CONSTRAINT IF EXISTS cases_state_check;
ALTER TABLE cases ADD CONSTRAINT cases_state_check CHECK (state IN ('awaiting_triage', 'returned',
    'booked', 'listed', 'in_discussion', 'discussed', 'outcome_signed', 'deferred', 'withdrawn'));

-- The proforma. Cases booked before this release have none (NULL).
ALTER TABLE cases ADD COLUMN referral_received_on DATE;
ALTER TABLE cases ADD COLUMN referral_source TEXT CHECK (referral_source IN ('gp',
    'first_contact_practitioner', 'physiotherapist', 'extended_scope_practitioner', 'consultant', 'other'));
-- symptom_weeks, conservative_care, imaging, medication_tried, start_back, patient_agrees (JSON).
ALTER TABLE cases ADD COLUMN proforma TEXT;
-- When the case last went to triage, and the latest return's reason and note.
ALTER TABLE cases ADD COLUMN submitted_at TIMESTAMPTZ;
ALTER TABLE cases ADD COLUMN return_reason TEXT;
ALTER TABLE cases ADD COLUMN return_note TEXT;
-- The standard plan a listed case follows (a code of its specialty's standard plans).
ALTER TABLE cases ADD COLUMN standard_plan TEXT;
CREATE INDEX cases_awaiting_triage ON cases(submitted_at) WHERE state = 'awaiting_triage';

-- Every triage decision, for the queue's history and the reports.
CREATE TABLE triage_decisions (
    id            UUID PRIMARY KEY,
    case_id       UUID NOT NULL REFERENCES cases(id),
    specialty     TEXT NOT NULL REFERENCES specialties(slug),
    decision      TEXT NOT NULL CHECK (decision IN ('accept', 'return', 'list')),
    reason        TEXT,
    note          TEXT,
    standard_plan TEXT,
    submitted_at  TIMESTAMPTZ NOT NULL,
    decided_at    TIMESTAMPTZ NOT NULL,
    decided_by    UUID NOT NULL REFERENCES users(id)
);
CREATE INDEX triage_decisions_decided ON triage_decisions(decided_at);

-- Which proforma fields a specialty requires, and its standard plans (JSON).
ALTER TABLE specialties ADD COLUMN proforma_required TEXT NOT NULL
    DEFAULT '["start_back"]';
ALTER TABLE specialties ADD COLUMN standard_plans TEXT NOT NULL DEFAULT '[]';
UPDATE specialties SET standard_plans = '[{"code": "continue_current_care", "title": "Continue current care", "plan": "Continue the current first-contact and physiotherapy-led management; the referrer reviews progress and re-refers if symptoms change."}, {"code": "discharge_self_management", "title": "Discharge with self-management", "plan": "Discharge to self-management with written advice; the GP or referrer re-refers if symptoms change."}]';

-- When the agenda was published (the publication rule and late additions).
ALTER TABLE sessions ADD COLUMN published_at TIMESTAMPTZ;

-- Where a guest comes from, shown to the chair in the lobby.
ALTER TABLE users ADD COLUMN organisation TEXT;

-- People invited to a session besides its chair, referrers and specialty members.
CREATE TABLE session_invitations (
    session_id    UUID NOT NULL REFERENCES sessions(id),
    user_id       UUID NOT NULL REFERENCES users(id),
    kind          TEXT NOT NULL CHECK (kind IN ('learner', 'guest', 'trainee')),
    invited_by    UUID NOT NULL REFERENCES users(id),
    invited_at    TIMESTAMPTZ NOT NULL,
    withdrawn_at  TIMESTAMPTZ,
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX session_invitations_user ON session_invitations(user_id);
