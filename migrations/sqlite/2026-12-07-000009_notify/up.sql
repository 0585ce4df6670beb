-- The PostgreSQL tree notifies other nodes here (LISTEN/NOTIFY); SQLite is one node, which
-- wakes its own streams and router in process. Same trigger names in both trees, doing
-- nothing here.
CREATE TRIGGER alerts_notify AFTER INSERT ON alerts BEGIN SELECT 1; END;
