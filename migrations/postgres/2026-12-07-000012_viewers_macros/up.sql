-- Who has a case open in the inbox right now (collision warnings): a heartbeat per viewer.
CREATE TABLE case_viewers (
    case_id TEXT NOT NULL REFERENCES cases (id),
    agent_id TEXT NOT NULL REFERENCES agents (id),
    composing BOOLEAN NOT NULL DEFAULT FALSE,
    seen_at TIMESTAMP NOT NULL,
    PRIMARY KEY (case_id, agent_id)
);
CREATE INDEX case_viewers_seen ON case_viewers (seen_at);

-- Canned replies with placeholders, managed by admins.
CREATE TABLE macros (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
