-- Reports (issue 7): the activity report reads sessions by start time across every
-- specialty (a coordinator's report); per-specialty reads use sessions_specialty_starts.
CREATE INDEX sessions_starts ON sessions(starts_at);
