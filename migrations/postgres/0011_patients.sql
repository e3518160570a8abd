-- One patient per NHS number (issue 13): the register every booking is checked against.
-- Existing cases fill it with each number's latest booking; numbers whose cases disagree
-- on name or date of birth are not merged but listed in patient_conflicts for a
-- coordinator to resolve (GET /api/patients/conflicts).
CREATE TABLE patients (
    nhs_number        TEXT PRIMARY KEY CHECK (length(nhs_number) = 10),
    given_name        TEXT NOT NULL,
    family_name       TEXT NOT NULL,
    date_of_birth     DATE NOT NULL,
    sex               TEXT NOT NULL CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    gp_practice_code  TEXT NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);

INSERT INTO patients (nhs_number, given_name, family_name, date_of_birth, sex, gp_practice_code, updated_at)
SELECT nhs_number, given_name, family_name, date_of_birth, sex, gp_practice_code, booked_at
FROM (
    SELECT c.*, ROW_NUMBER() OVER (PARTITION BY nhs_number ORDER BY booked_at DESC, id DESC) AS latest
    FROM cases c
) latest_bookings
WHERE latest = 1;

CREATE TABLE patient_conflicts (
    nhs_number   TEXT PRIMARY KEY REFERENCES patients(nhs_number),
    found_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at  TIMESTAMPTZ,
    resolved_by  UUID REFERENCES users(id)
);

INSERT INTO patient_conflicts (nhs_number)
SELECT nhs_number
FROM cases
GROUP BY nhs_number
HAVING COUNT(DISTINCT lower(trim(given_name)) || '|' || lower(trim(family_name)) || '|' || date_of_birth::text) > 1;
