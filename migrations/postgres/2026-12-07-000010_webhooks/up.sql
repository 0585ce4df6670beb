-- Webhooks for integrators: subscriptions per event type, and one delivery row per event and
-- subscription, written by a trigger on case_events in the transaction that recorded the
-- event (so no write path can forget one), delivered by the dispatcher with retries.
CREATE TABLE webhook_subscriptions (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    -- JSON array of event types, e.g. ["sla.breached", "case.created"]; ["*"] for all.
    events TEXT NOT NULL,
    description TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    -- No foreign key: a delivery written while its subscription is being deleted must not
    -- fail the writer's transaction; the dispatcher drops such orphans.
    subscription_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_id TEXT NOT NULL,
    case_id TEXT NOT NULL,
    data TEXT NOT NULL,
    event_at TIMESTAMP NOT NULL,
    -- pending, delivered or failed (gave up after webhooks.max_attempts).
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    delivered_at TIMESTAMP
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, id);

CREATE FUNCTION caseflow_webhook_fanout() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t TEXT;
BEGIN
    t := CASE
        WHEN NEW.kind = 'case_created' THEN 'case.created'
        WHEN NEW.kind = 'assignee_changed' AND (NEW.data::jsonb ->> 'to') IS NOT NULL THEN 'case.assigned'
        WHEN NEW.kind = 'assignee_changed' THEN 'case.unassigned'
        WHEN NEW.kind = 'status_changed' THEN 'case.status_changed'
        WHEN NEW.kind = 'priority_changed' THEN 'case.priority_changed'
        WHEN NEW.kind = 'message_added' THEN 'message.created'
        WHEN NEW.kind = 'sla_warning' THEN 'sla.warning'
        WHEN NEW.kind = 'sla_breached' THEN 'sla.breached'
        WHEN NEW.kind IN ('sla_escalated', 'routing_escalated') THEN 'case.escalated'
        ELSE NULL
    END;
    IF t IS NOT NULL THEN
        INSERT INTO webhook_deliveries (id, subscription_id, event_type, event_id, case_id, data, event_at, status, attempts, next_attempt_at)
            SELECT NEW.id || '.' || s.id, s.id, t, NEW.id, NEW.case_id, NEW.data, NEW.created_at, 'pending', 0, NEW.created_at
            FROM webhook_subscriptions s
            WHERE s.active AND (s.events LIKE '%"' || t || '"%' OR s.events LIKE '%"*"%');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER webhook_fanout AFTER INSERT ON case_events
    FOR EACH ROW EXECUTE FUNCTION caseflow_webhook_fanout();
