-- Browser sessions ended by logging out, until they would have expired anyway.
CREATE TABLE revoked_sessions (
    token_hash TEXT PRIMARY KEY,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX revoked_sessions_expiry ON revoked_sessions (expires_at);
