-- Raw mail and message bodies are large, compressible and written at ingest speed: lz4 is
-- several times cheaper than the default pglz for TOAST. Servers built without lz4 keep pglz.
DO $$
BEGIN
    ALTER TABLE inbound_messages ALTER COLUMN raw SET COMPRESSION lz4;
    ALTER TABLE messages ALTER COLUMN body_text SET COMPRESSION lz4;
    ALTER TABLE messages ALTER COLUMN body_html SET COMPRESSION lz4;
    ALTER TABLE messages ALTER COLUMN body_full SET COMPRESSION lz4;
    ALTER TABLE attachments ALTER COLUMN content SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available; TOAST keeps pglz';
END $$;
