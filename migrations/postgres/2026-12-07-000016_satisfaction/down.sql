CREATE OR REPLACE FUNCTION caseflow_webhook_fanout() RETURNS trigger LANGUAGE plpgsql AS $$
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
DROP TABLE satisfaction_surveys;
