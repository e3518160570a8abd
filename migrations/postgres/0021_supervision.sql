-- Mentorship beyond the meeting (issue 21): cases from a practitioner's own caseload on
-- their arm's mentorship list (the same patient details and proforma columns as `cases`),
-- the consultants' advice on each, covering consultants for a contract's dates, and the
-- supervision record (a named supervisor per practitioner, workplace-based assessments).
-- Dates are clinic (UK) days.
CREATE TABLE mentorship_cases (
    id                 UUID PRIMARY KEY,
    practitioner_id    UUID NOT NULL REFERENCES users(id),
    specialty          TEXT NOT NULL REFERENCES specialties(slug),
    nhs_number         TEXT NOT NULL CHECK (length(nhs_number) = 10),
    given_name         TEXT NOT NULL,
    family_name        TEXT NOT NULL,
    date_of_birth      DATE NOT NULL,
    sex                TEXT NOT NULL CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    gp_practice_code   TEXT NOT NULL,
    clinical_question  TEXT NOT NULL,
    history            TEXT NOT NULL,
    urgency            TEXT NOT NULL CHECK (urgency IN ('routine', 'urgent')),
    body_site          TEXT NOT NULL,
    free_text_identifies_patient BOOLEAN NOT NULL,
    referral_received_on DATE NOT NULL,
    referral_source    TEXT,
    proforma           TEXT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    created_on         DATE NOT NULL,
    -- The day of its first advice: it leaves the arm's backlog then.
    advised_on         DATE,
    -- The MDT case "book into the MDT" made of it.
    booked_case_id     UUID UNIQUE REFERENCES cases(id)
);
CREATE INDEX mentorship_cases_practitioner ON mentorship_cases(practitioner_id, created_at);
CREATE INDEX mentorship_cases_specialty ON mentorship_cases(specialty, created_on);
CREATE INDEX mentorship_cases_nhs_number ON mentorship_cases(nhs_number);

CREATE TABLE mentorship_advice (
    id                 UUID PRIMARY KEY,
    mentorship_case_id UUID NOT NULL REFERENCES mentorship_cases(id),
    consultant_id      UUID NOT NULL REFERENCES users(id),
    decision           TEXT NOT NULL CHECK (decision IN ('advice_given', 'phone_follow_up',
                                                         'joint_assessment', 'book_mdt')),
    note               TEXT,
    session_id         UUID REFERENCES sessions(id),
    booked_case_id     UUID REFERENCES cases(id),
    given_at           TIMESTAMPTZ NOT NULL,
    given_on           DATE NOT NULL,
    CHECK ((decision = 'book_mdt') = (booked_case_id IS NOT NULL))
);
CREATE INDEX mentorship_advice_case ON mentorship_advice(mentorship_case_id, given_at);

CREATE TABLE mentorship_covers (
    id             UUID PRIMARY KEY,
    contract_id    UUID NOT NULL REFERENCES mentorship_contracts(id),
    consultant_id  UUID NOT NULL REFERENCES users(id),
    starts_on      DATE NOT NULL,
    ends_on        DATE NOT NULL,
    created_by     UUID NOT NULL REFERENCES users(id),
    created_at     TIMESTAMPTZ NOT NULL,
    CHECK (ends_on >= starts_on)
);
CREATE INDEX mentorship_covers_contract ON mentorship_covers(contract_id, starts_on);
CREATE INDEX mentorship_covers_consultant ON mentorship_covers(consultant_id);

CREATE TABLE supervision_assignments (
    id             UUID PRIMARY KEY,
    supervisee_id  UUID NOT NULL REFERENCES users(id),
    supervisor_id  UUID NOT NULL REFERENCES users(id),
    assigned_at    TIMESTAMPTZ NOT NULL,
    assigned_by    UUID NOT NULL REFERENCES users(id),
    ended_at       TIMESTAMPTZ,
    CHECK (supervisee_id <> supervisor_id)
);
-- One named supervisor per practitioner at a time.
CREATE UNIQUE INDEX supervision_assignments_current
    ON supervision_assignments(supervisee_id) WHERE ended_at IS NULL;
CREATE INDEX supervision_assignments_supervisor ON supervision_assignments(supervisor_id);

CREATE TABLE supervision_assessments (
    id             UUID PRIMARY KEY,
    supervisee_id  UUID NOT NULL REFERENCES users(id),
    supervisor_id  UUID NOT NULL REFERENCES users(id),
    kind           TEXT NOT NULL,
    occurred_on    DATE NOT NULL,
    outcome        TEXT NOT NULL,
    reflection     TEXT,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX supervision_assessments_supervisee ON supervision_assessments(supervisee_id, occurred_on);
