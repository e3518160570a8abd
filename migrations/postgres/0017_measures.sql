-- Measures (issue 17): waiting-time targets per specialty, GP practices' list sizes, and
-- the facts the activity report aggregates, kept on the case and session rows by the
-- transactions that change them (so a report is a few GROUP BYs, not a read of every
-- row). Each fact is backfilled here from the tables it summarises.

-- Waiting-time targets (JSON, `domain::measures::WaitTarget`); NULL: the defaults.
ALTER TABLE specialties ADD COLUMN wait_targets TEXT;

-- Registered patients per GP practice, imported by coordinators from a CSV.
CREATE TABLE practice_list_sizes (
    ods_code     TEXT PRIMARY KEY CHECK (length(ods_code) = 6),
    list_size    INTEGER NOT NULL CHECK (list_size > 0),
    imported_at  TIMESTAMPTZ NOT NULL,
    imported_by  UUID NOT NULL REFERENCES users(id)
);

-- The live discussion's first start and first end (completion or deferral).
ALTER TABLE cases ADD COLUMN discussion_started_at TIMESTAMPTZ;
ALTER TABLE cases ADD COLUMN discussion_ended_at TIMESTAMPTZ;
-- A moved case row's episode's first booking (NULL: the row's own booking).
ALTER TABLE cases ADD COLUMN episode_booked_at TIMESTAMPTZ;
-- The first triage decision.
ALTER TABLE cases ADD COLUMN first_triaged_at TIMESTAMPTZ;
-- The first signing, whether any signing was outside the meeting, and the latest signed
-- version's mix: discharged to GP (0/1; NULL while nothing is signed), onward
-- destinations (sorted, distinct, comma-separated), investigation kinds (sorted, one per
-- item) and whether it asks for a re-discussion.
ALTER TABLE cases ADD COLUMN first_signed_at TIMESTAMPTZ;
ALTER TABLE cases ADD COLUMN outside_meeting INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN outcome_discharged INTEGER;
ALTER TABLE cases ADD COLUMN outcome_onward TEXT;
ALTER TABLE cases ADD COLUMN outcome_investigations TEXT;
ALTER TABLE cases ADD COLUMN outcome_re_discuss INTEGER;
-- When the communication clocks were first met.
ALTER TABLE cases ADD COLUMN referrer_informed_at TIMESTAMPTZ;
ALTER TABLE cases ADD COLUMN patient_letter_sent_at TIMESTAMPTZ;
-- When a session first had its chair and quorum present together.
ALTER TABLE sessions ADD COLUMN quorate_at TIMESTAMPTZ;

CREATE INDEX triage_decisions_case ON triage_decisions(case_id);

UPDATE cases c SET
    discussion_started_at = t.started_at,
    discussion_ended_at = t.ended_at
FROM (SELECT (e.payload::jsonb ->> 'case_id')::uuid AS case_id, e.session_id,
             MIN(CASE WHEN e.kind = 'case_started' THEN e.occurred_at END) AS started_at,
             MIN(CASE WHEN e.kind <> 'case_started' THEN e.occurred_at END) AS ended_at
      FROM session_events e
      WHERE e.kind IN ('case_started', 'case_completed', 'case_deferred')
      GROUP BY 1, 2) t
WHERE t.case_id = c.id AND t.session_id = c.session_id;

WITH RECURSIVE origin(case_id, ancestor, booked_at) AS (
    SELECT c.id, c.moved_from, c.booked_at FROM cases c WHERE c.moved_from IS NOT NULL
    UNION ALL
    SELECT o.case_id, p.moved_from, p.booked_at FROM origin o JOIN cases p ON p.id = o.ancestor
)
UPDATE cases c SET episode_booked_at = f.first_booked_at
FROM (SELECT case_id, MIN(booked_at) AS first_booked_at FROM origin GROUP BY case_id) f
WHERE f.case_id = c.id;

UPDATE cases c SET first_triaged_at = t.decided_at
FROM (SELECT case_id, MIN(decided_at) AS decided_at FROM triage_decisions GROUP BY case_id) t
WHERE t.case_id = c.id;

UPDATE cases c SET
    first_signed_at = o.first_signed_at,
    outside_meeting = o.outside_meeting
FROM (SELECT case_id, MIN(signed_at) AS first_signed_at,
             MAX(CASE WHEN outside_meeting_reason IS NULL THEN 0 ELSE 1 END) AS outside_meeting
      FROM outcome_versions WHERE signed_at IS NOT NULL GROUP BY case_id) o
WHERE o.case_id = c.id;

UPDATE cases c SET
    outcome_discharged = CASE WHEN EXISTS (
        SELECT 1 FROM jsonb_array_elements(b.body -> 'referrals') r
        WHERE r ->> 'destination' = 'gp_discharge') THEN 1 ELSE 0 END,
    outcome_onward = (
        SELECT string_agg(d, ',' ORDER BY d) FROM (
            SELECT DISTINCT r ->> 'destination' AS d
            FROM jsonb_array_elements(b.body -> 'referrals') r
            WHERE r ->> 'destination' <> 'gp_discharge') x),
    outcome_investigations = (
        SELECT string_agg(i ->> 'kind', ',' ORDER BY i ->> 'kind')
        FROM jsonb_array_elements(b.body -> 'investigations') i),
    outcome_re_discuss = CASE WHEN b.body -> 'follow_up' ->> 'kind' = 're_discuss' THEN 1 ELSE 0 END
FROM (SELECT DISTINCT ON (case_id) case_id, body::jsonb AS body FROM outcome_versions
      WHERE signed_at IS NOT NULL ORDER BY case_id, version DESC) b
WHERE b.case_id = c.id;

UPDATE cases c SET
    referrer_informed_at = (SELECT MIN(COALESCE(d.printed_at, ob.sent_at)) FROM letters l
        JOIN letter_deliveries d ON d.letter_id = l.id LEFT JOIN outbox ob ON ob.id = d.outbox_id
        WHERE l.case_id = c.id AND l.kind = 'gp' AND d.recipient = 'referrer'),
    patient_letter_sent_at = (SELECT MIN(COALESCE(d.printed_at, ob.sent_at)) FROM letters l
        JOIN letter_deliveries d ON d.letter_id = l.id LEFT JOIN outbox ob ON ob.id = d.outbox_id
        WHERE l.case_id = c.id AND l.kind = 'patient' AND d.recipient = 'patient')
WHERE c.first_signed_at IS NOT NULL;

-- A session was quorate at the first join after which its chair and `quorum_others`
-- other consultants or practitioners were present together.
UPDATE sessions s SET quorate_at = q.at
FROM (SELECT a.session_id, MIN(a.joined_at) AS at
      FROM attendance a JOIN sessions x ON x.id = a.session_id
      JOIN specialties sp ON sp.slug = x.specialty
      WHERE EXISTS (SELECT 1 FROM attendance ch WHERE ch.session_id = a.session_id
                      AND ch.user_id = x.chair_id AND ch.joined_at <= a.joined_at
                      AND (ch.left_at IS NULL OR ch.left_at > a.joined_at))
        AND (SELECT COUNT(DISTINCT o.user_id) FROM attendance o
             WHERE o.session_id = a.session_id AND o.user_id <> x.chair_id
               AND o.role IN ('consultant', 'practitioner') AND o.joined_at <= a.joined_at
               AND (o.left_at IS NULL OR o.left_at > a.joined_at)) >= sp.quorum_others
      GROUP BY a.session_id) q
WHERE q.session_id = s.id;
