-- Case history and agenda order: a moved case keeps its old row (state 'deferred') and
-- the new row points back at it; a case whose session was cancelled with no later session
-- to take it is flagged for rebooking; the chair may set an explicit agenda order.
ALTER TABLE cases ADD COLUMN moved_from TEXT REFERENCES cases(id);
ALTER TABLE cases ADD COLUMN needs_rebooking INTEGER NOT NULL DEFAULT 0 CHECK (needs_rebooking IN (0, 1));
ALTER TABLE cases ADD COLUMN agenda_position INTEGER;
