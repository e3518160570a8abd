-- The audit log's (record_type, record_id) and (actor_id) indexes are covered by the
-- (record_id, seq) and (actor_id, seq) ones (0010), which every query uses; each audited
-- write maintained them for nothing (an identified export appends one row per case).
DROP INDEX IF EXISTS audit_events_record;
DROP INDEX IF EXISTS audit_events_actor;
