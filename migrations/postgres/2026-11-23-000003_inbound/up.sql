-- Every inbound raw message, with what became of it: the deduplication ledger (a re-delivered
-- message is recognised by channel + dedup key), the quarantine (outcome 'quarantined') and the
-- record of ignored mail (auto-replies, lists, loops), kept raw so nothing is lost.
CREATE TABLE inbound_messages (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    source TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    case_id TEXT REFERENCES cases (id),
    message_id TEXT REFERENCES messages (id),
    raw BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP,
    UNIQUE (channel, dedup_key)
);
CREATE INDEX inbound_messages_outcome_idx ON inbound_messages (outcome, id);

-- The full text of a message when `body_text` holds only the new part (email replies).
ALTER TABLE messages ADD COLUMN body_full TEXT;
