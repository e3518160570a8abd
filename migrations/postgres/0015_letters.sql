-- Letters after a signed outcome (issue 16): GP practices as data, the letters each
-- signed version made (PDF bytes in the blob store by sha256, never changed; an
-- amendment's letters supersede the old ones), and every delivery of each letter.

CREATE TABLE practices (
    ods_code    TEXT PRIMARY KEY CHECK (length(ods_code) = 6),
    name        TEXT NOT NULL,
    email       TEXT,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE letters (
    id             UUID PRIMARY KEY,
    case_id        UUID NOT NULL REFERENCES cases(id),
    kind           TEXT NOT NULL CHECK (kind IN ('gp', 'patient')),
    version        INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    superseded_by  UUID REFERENCES letters(id),
    UNIQUE (case_id, kind, version)
);
CREATE INDEX letters_case ON letters (case_id, created_at);

-- The email a delivery travelled in carries the letter as an attachment.
ALTER TABLE outbox ADD COLUMN letter_id UUID REFERENCES letters(id);

CREATE TABLE letter_deliveries (
    id          UUID PRIMARY KEY,
    letter_id   UUID NOT NULL REFERENCES letters(id),
    recipient   TEXT NOT NULL CHECK (recipient IN ('practice', 'referrer', 'patient')),
    channel     TEXT NOT NULL CHECK (channel IN ('email', 'post')),
    outbox_id   UUID REFERENCES outbox(id),
    created_at  TIMESTAMPTZ NOT NULL,
    printed_by  UUID REFERENCES users(id),
    printed_at  TIMESTAMPTZ,
    CHECK ((channel = 'email') = (outbox_id IS NOT NULL))
);
CREATE INDEX letter_deliveries_letter ON letter_deliveries (letter_id);
CREATE INDEX letter_deliveries_to_print ON letter_deliveries (created_at)
    WHERE channel = 'post' AND printed_at IS NULL;
