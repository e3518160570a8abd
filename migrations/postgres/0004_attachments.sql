-- Attachments: images and records on a case. The bytes live content-addressed (sha256)
-- in the blob store; this table says which case holds which blob, as what.
CREATE TABLE attachments (
    id            UUID PRIMARY KEY,
    case_id       UUID NOT NULL REFERENCES cases(id),
    sha256        TEXT NOT NULL CHECK (length(sha256) = 64),
    size          BIGINT NOT NULL CHECK (size > 0),
    content_type  TEXT NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'application/dicom', 'application/pdf', 'text/plain')),
    filename      TEXT NOT NULL,
    uploaded_by   UUID NOT NULL REFERENCES users(id),
    uploaded_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX attachments_case ON attachments(case_id, uploaded_at);
