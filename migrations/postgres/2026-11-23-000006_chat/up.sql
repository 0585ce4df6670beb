-- Web form and live chat.

-- The topic a customer picked on the web form or in the chat widget (a key of
-- `web_form.topics`); routing maps it to skills.
ALTER TABLE cases ADD COLUMN topic TEXT;

-- A dense per-case order of the messages a conversation shows (chat replay, resume): assigned
-- as max + 1 inside the transaction that moves the case's version, so the order is the commit
-- order and has no gaps. NULL for messages that are not part of a live conversation.
ALTER TABLE messages ADD COLUMN seq BIGINT;
CREATE UNIQUE INDEX messages_case_seq ON messages (case_id, seq) WHERE seq IS NOT NULL;

-- One chat session: a visitor's conversation in the widget. The resume token is kept only as
-- its SHA-256. `received_seq` is the highest message seq the visitor's browser confirmed.
CREATE TABLE chat_sessions (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    case_id TEXT REFERENCES cases (id),
    visitor_id TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    topic TEXT,
    status TEXT NOT NULL,
    received_seq BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
CREATE INDEX chat_sessions_case ON chat_sessions (case_id);
CREATE INDEX chat_sessions_visitor ON chat_sessions (visitor_id);
