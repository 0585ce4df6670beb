-- PostgreSQL only (TOAST compression); SQLite has nothing to change. Kept so both trees have
-- the same migrations.
SELECT 1;
