DROP TABLE inbound_messages;
ALTER TABLE messages DROP COLUMN body_full;
