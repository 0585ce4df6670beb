DROP TABLE chat_sessions;
DROP INDEX messages_case_seq;
ALTER TABLE messages DROP COLUMN seq;
ALTER TABLE cases DROP COLUMN topic;
