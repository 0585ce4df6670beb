-- Cross-node wake-ups: a commit that raised alerts notifies every node's listener (one
-- dedicated connection per node), which wakes its alert streams at once instead of at their
-- next poll. Alerts are rare; routing changes are not, so those are announced by each node's
-- listener after its own writes, at most every 50 ms (NOTIFY in every writer's transaction
-- would serialize commits server-wide). The tables stay the record; a notification lost
-- while a node reconnects only delays it to the poll.
CREATE FUNCTION caseflow_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER alerts_notify AFTER INSERT ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION caseflow_notify('caseflow_alerts');
