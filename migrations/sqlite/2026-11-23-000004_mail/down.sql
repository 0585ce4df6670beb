ALTER TABLE messages DROP COLUMN delivery_error;
DROP TABLE mailbox_state;
