-- Customer satisfaction (CSAT, ADR 0014): one survey per solved case, sent on the case's
-- channel some time after it was solved, answered on a public page reached through a random
-- link (the survey row keeps only its SHA-256; the link itself is in the message sent). The rating and its comment are seen by agents and
-- supervisors only, and count for the team and agent who had the case when it was rated.
CREATE TABLE satisfaction_surveys (
    case_id TEXT PRIMARY KEY REFERENCES cases (id),
    token_hash TEXT NOT NULL,
    channel TEXT NOT NULL,
    -- sent, or unreachable (no address to send it to: an anonymous chat that has ended);
    -- either way the case is not looked at again.
    status TEXT NOT NULL,
    sent_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    -- good or bad; NULL until the customer answers (they may change it until it expires).
    rating TEXT,
    comment TEXT,
    rated_at TIMESTAMP,
    team_id TEXT,
    agent_id TEXT
);
CREATE UNIQUE INDEX satisfaction_surveys_token ON satisfaction_surveys (token_hash);
CREATE INDEX satisfaction_surveys_rated ON satisfaction_surveys (rated_at) WHERE rated_at IS NOT NULL;

-- A rating is a webhook event (`case.rated`): the fan-out function learns its kind.
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
        WHEN NEW.kind = 'case_rated' THEN 'case.rated'
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
