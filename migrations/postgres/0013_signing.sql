-- Signing needs a discussion (issue 16): an outcome signed for a case its meeting did not
-- discuss carries the consultant's reason for deciding outside the meeting.
ALTER TABLE outcome_versions ADD COLUMN outside_meeting_reason TEXT;
