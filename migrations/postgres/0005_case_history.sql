-- Case history and agenda order: a moved case keeps its old row (state 'deferred') and
-- the new row points back at it; a case whose session was cancelled with no later session
-- to take it is flagged for rebooking; the chair may set an explicit agenda order.
ALTER TABLE cases ADD COLUMN moved_from UUID REFERENCES cases(id);
ALTER TABLE cases ADD COLUMN needs_rebooking BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE cases ADD COLUMN agenda_position INTEGER;
