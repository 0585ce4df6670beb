-- Where each IMAP mailbox's poller stands: the folder's UIDVALIDITY and the highest UID whose
-- message is committed. Written in the same transaction as the messages it covers.
CREATE TABLE mailbox_state (
    mailbox TEXT PRIMARY KEY,
    uid_validity BIGINT NOT NULL,
    last_uid BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Why the last delivery attempt of an outbound message failed (shown to the agent).
ALTER TABLE messages ADD COLUMN delivery_error TEXT;
