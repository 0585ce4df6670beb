-- Cross-node wake-ups: a commit that raised alerts or left routing signals notifies every
-- node's listener (one dedicated connection per node), which wakes its alert streams and its
-- router at once instead of at their next poll. The tables stay the record; a notification
-- lost while a node reconnects only delays it to the poll.
CREATE FUNCTION caseflow_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER alerts_notify AFTER INSERT ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION caseflow_notify('caseflow_alerts');
CREATE TRIGGER routing_signals_notify AFTER INSERT OR UPDATE ON routing_signals
    FOR EACH STATEMENT EXECUTE FUNCTION caseflow_notify('caseflow_routing');
