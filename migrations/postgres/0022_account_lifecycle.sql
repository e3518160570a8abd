-- Account lifecycle (issue 19): a password reset by a coordinator is a one-time password
-- the person must change at their next sign-in; until then their token reaches only
-- `GET /api/me` and `POST /api/me/password`.
ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;
