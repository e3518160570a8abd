-- Audit queries (issue 7): a patient's trail looks events up by record id alone (a UUID,
-- unique across record types), a user's by actor; both page in chain order (seq).
CREATE INDEX audit_events_record_seq ON audit_events(record_id, seq);
CREATE INDEX audit_events_actor_seq ON audit_events(actor_id, seq);
