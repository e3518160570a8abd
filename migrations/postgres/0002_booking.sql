-- Booking details: whether free text may identify the patient (trainees never see it
-- then), and the client's idempotency key so a retried booking is not booked twice.
ALTER TABLE cases ADD COLUMN free_text_identifies_patient BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE cases ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX cases_idempotency ON cases(referrer_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX cases_referrer ON cases(referrer_id, booked_at);
