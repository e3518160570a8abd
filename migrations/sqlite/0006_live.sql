-- The live meeting: every state change of a live session as an ordered event (the source
-- of truth the rooms of every instance follow), single-use WebSocket tickets, attendance
-- derived from presence, instance heartbeats (to clear presence left by a dead instance)
-- and the quorum each specialty requires.
CREATE TABLE session_events (
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    seq         INTEGER NOT NULL CHECK (seq > 0),
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    actor_id    TEXT REFERENCES users(id),
    command_id  TEXT,
    occurred_at TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
-- A command is applied once: its id is unique per sender and session.
CREATE UNIQUE INDEX session_events_command ON session_events(session_id, actor_id, command_id)
    WHERE command_id IS NOT NULL;
CREATE TRIGGER session_events_no_update BEFORE UPDATE ON session_events
BEGIN SELECT RAISE(ABORT, 'session events are append-only'); END;
CREATE TRIGGER session_events_no_delete BEFORE DELETE ON session_events
BEGIN SELECT RAISE(ABORT, 'session events are append-only'); END;

CREATE TABLE live_tickets (
    ticket_hash TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);

CREATE TABLE attendance (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    role        TEXT NOT NULL,
    joined_at   TEXT NOT NULL,
    left_at     TEXT
);
CREATE INDEX attendance_session ON attendance(session_id, user_id);
CREATE INDEX attendance_user ON attendance(user_id, joined_at);

CREATE TABLE live_instances (
    id         TEXT PRIMARY KEY,
    seen_at    TEXT NOT NULL
);

-- Quoracy: the chair plus this many other consultants or specialists present.
ALTER TABLE specialties ADD COLUMN quorum_others INTEGER NOT NULL DEFAULT 1 CHECK (quorum_others >= 0);
