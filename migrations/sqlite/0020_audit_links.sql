-- Audit links (issue 17): the records an audit event covers beyond its own record_id. A
-- bulk export is one chained event covering every case it carried, and each case is a row
-- here, so that patient's trail finds the export. The event's hash covers the digest of
-- its links (domain::audit::covers_digest): a link added, changed or removed breaks
-- verification at that event. Append-only, like the log.
CREATE TABLE audit_event_records (
    record_id  TEXT NOT NULL,
    seq        INTEGER NOT NULL REFERENCES audit_events(seq),
    PRIMARY KEY (record_id, seq)
) WITHOUT ROWID;

CREATE TRIGGER audit_event_records_no_update BEFORE UPDATE ON audit_event_records
BEGIN
    SELECT RAISE(ABORT, 'audit_event_records is append-only');
END;
CREATE TRIGGER audit_event_records_no_delete BEFORE DELETE ON audit_event_records
BEGIN
    SELECT RAISE(ABORT, 'audit_event_records is append-only');
END;
