DROP TRIGGER webhook_fanout;
CREATE TRIGGER webhook_fanout AFTER INSERT ON case_events
    WHEN NEW.kind IN ('case_created', 'assignee_changed', 'status_changed', 'priority_changed', 'message_added',
        'sla_warning', 'sla_breached', 'sla_escalated', 'routing_escalated')
BEGIN
    INSERT INTO webhook_deliveries (id, subscription_id, event_type, event_id, case_id, data, event_at, status, attempts, next_attempt_at)
        SELECT NEW.id || '.' || s.id, s.id, e.t, NEW.id, NEW.case_id, NEW.data, NEW.created_at, 'pending', 0, NEW.created_at
        FROM webhook_subscriptions s, (SELECT CASE
            WHEN NEW.kind = 'case_created' THEN 'case.created'
            WHEN NEW.kind = 'assignee_changed' AND json_extract(NEW.data, '$.to') IS NOT NULL THEN 'case.assigned'
            WHEN NEW.kind = 'assignee_changed' THEN 'case.unassigned'
            WHEN NEW.kind = 'status_changed' THEN 'case.status_changed'
            WHEN NEW.kind = 'priority_changed' THEN 'case.priority_changed'
            WHEN NEW.kind = 'message_added' THEN 'message.created'
            WHEN NEW.kind = 'sla_warning' THEN 'sla.warning'
            WHEN NEW.kind = 'sla_breached' THEN 'sla.breached'
            ELSE 'case.escalated'
        END AS t) AS e
        WHERE s.active AND (s.events LIKE '%"' || e.t || '"%' OR s.events LIKE '%"*"%');
END;
DROP TABLE satisfaction_surveys;
