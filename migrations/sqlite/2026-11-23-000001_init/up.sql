-- Caseflow initial schema (SQLite). Keep in step with ../../postgres/: same tables, same
-- columns, same names; a test compares both trees after applying them.
-- Timestamps are UTC in `TIMESTAMP` columns (diesel's portable type across both backends).

CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('case_number', 1000);

CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE skills (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT,
    team_id TEXT REFERENCES teams (id),
    presence TEXT NOT NULL DEFAULT 'offline',
    presence_changed_at TIMESTAMP NOT NULL,
    max_load INTEGER NOT NULL DEFAULT 5,
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX agents_team_idx ON agents (team_id);

CREATE TABLE agent_skills (
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    skill_id TEXT NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    level INTEGER NOT NULL,
    PRIMARY KEY (agent_id, skill_id)
);
CREATE INDEX agent_skills_skill_idx ON agent_skills (skill_id);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_prefix TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_by TEXT REFERENCES agents (id),
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);

CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    tier TEXT NOT NULL DEFAULT 'standard',
    value BIGINT NOT NULL DEFAULT 0,
    notes TEXT NOT NULL DEFAULT '',
    merged_into TEXT REFERENCES customers (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX customers_name_idx ON customers (name);

CREATE TABLE customer_identities (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (kind, value)
);
CREATE INDEX customer_identities_customer_idx ON customer_identities (customer_id);

CREATE TABLE customer_events (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    kind TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    data TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX customer_events_customer_idx ON customer_events (customer_id, id);

CREATE TABLE cases (
    id TEXT PRIMARY KEY,
    number BIGINT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    status TEXT NOT NULL,
    priority TEXT NOT NULL,
    channel TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    team_id TEXT REFERENCES teams (id),
    assignee_id TEXT REFERENCES agents (id),
    linked_case_id TEXT REFERENCES cases (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_message_at TIMESTAMP NOT NULL,
    first_response_at TIMESTAMP,
    solved_at TIMESTAMP,
    closed_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX cases_status_idx ON cases (status, id);
CREATE INDEX cases_assignee_idx ON cases (assignee_id, status, id);
CREATE INDEX cases_team_idx ON cases (team_id, status, id);
CREATE INDEX cases_customer_idx ON cases (customer_id, id);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases (id),
    direction TEXT NOT NULL,
    channel TEXT NOT NULL,
    author_kind TEXT NOT NULL,
    author_id TEXT,
    body_text TEXT NOT NULL,
    body_html TEXT,
    external_id TEXT,
    message_id_header TEXT,
    in_reply_to TEXT,
    references_header TEXT,
    thread_rule TEXT,
    delivery_status TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (channel, external_id)
);
CREATE INDEX messages_case_idx ON messages (case_id, id);
CREATE INDEX messages_message_id_idx ON messages (message_id_header);

CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages (id),
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    inline_cid TEXT,
    content BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX attachments_message_idx ON attachments (message_id);

CREATE TABLE case_events (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases (id),
    kind TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    data TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX case_events_case_idx ON case_events (case_id, id);

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    case_id TEXT REFERENCES cases (id),
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP
);
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at);
