-- SLA: calendars and policies (JSON specs of the `caseflow-sla` engine, docs/sla.md), the
-- SLA state of each case, the log of milestones fired, and alerts for supervisors.

CREATE TABLE sla_calendars (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Tried in `position` order; the first whose conditions match a case applies.
CREATE TABLE sla_policies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    position INTEGER NOT NULL,
    spec TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Per case: the policy that applies, the earliest running deadline (inbox order), whether a
-- clock is breached, and when the scheduler must look at the case next: the earliest
-- milestone not yet fired. Triggers set `next_at` to the epoch on every change that can
-- move a deadline, so the scheduler re-evaluates the case at once (ADR 0010).
CREATE TABLE case_sla (
    case_id TEXT PRIMARY KEY REFERENCES cases (id),
    policy_id TEXT REFERENCES sla_policies (id) ON DELETE SET NULL,
    due_at TIMESTAMP,
    breached BOOLEAN NOT NULL DEFAULT FALSE,
    next_at TIMESTAMP,
    evaluated_at TIMESTAMP
);
CREATE INDEX case_sla_next ON case_sla (next_at) WHERE next_at IS NOT NULL;
CREATE INDEX case_sla_due ON case_sla (due_at) WHERE due_at IS NOT NULL;

-- Each milestone of each clock fired once: the primary key is the guarantee.
CREATE TABLE sla_fired (
    case_id TEXT NOT NULL REFERENCES cases (id),
    metric TEXT NOT NULL,
    cycle INTEGER NOT NULL,
    milestone TEXT NOT NULL,
    due_at TIMESTAMP NOT NULL,
    fired_at TIMESTAMP NOT NULL,
    PRIMARY KEY (case_id, metric, cycle, milestone)
);

-- Alerts for people: SLA warnings, breaches and escalations. `team_id` is the case's team
-- when raised (its supervisors see it; without a team, every supervisor); `agent_id` names
-- the one agent an alert is for (notify the assignee).
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases (id),
    team_id TEXT REFERENCES teams (id) ON DELETE SET NULL,
    agent_id TEXT REFERENCES agents (id),
    kind TEXT NOT NULL,
    metric TEXT,
    action TEXT,
    message TEXT NOT NULL,
    due_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    acknowledged_by TEXT REFERENCES agents (id),
    acknowledged_at TIMESTAMP
);
CREATE INDEX alerts_created ON alerts (created_at, id);
CREATE INDEX alerts_case ON alerts (case_id, id);

-- Every active case is looked at once.
INSERT INTO case_sla (case_id, next_at)
    SELECT id, '1970-01-01 00:00:00' FROM cases WHERE status NOT IN ('solved', 'closed');

CREATE TRIGGER sla_case_inserted AFTER INSERT ON cases BEGIN
    INSERT INTO case_sla (case_id, next_at) VALUES (NEW.id, '1970-01-01 00:00:00')
        ON CONFLICT (case_id) DO UPDATE SET next_at = excluded.next_at;
END;
-- Only when a value really changed: whole-row updates list every column.
CREATE TRIGGER sla_case_changed AFTER UPDATE OF status, priority, channel, team_id, customer_id ON cases
    WHEN OLD.status IS NOT NEW.status OR OLD.priority IS NOT NEW.priority OR OLD.channel IS NOT NEW.channel
        OR OLD.team_id IS NOT NEW.team_id OR OLD.customer_id IS NOT NEW.customer_id
BEGIN
    INSERT INTO case_sla (case_id, next_at) VALUES (NEW.id, '1970-01-01 00:00:00')
        ON CONFLICT (case_id) DO UPDATE SET next_at = excluded.next_at;
END;
CREATE TRIGGER sla_message_inserted AFTER INSERT ON messages BEGIN
    INSERT INTO case_sla (case_id, next_at) VALUES (NEW.case_id, '1970-01-01 00:00:00')
        ON CONFLICT (case_id) DO UPDATE SET next_at = excluded.next_at;
END;
CREATE TRIGGER sla_customer_changed AFTER UPDATE OF tier ON customers WHEN OLD.tier IS NOT NEW.tier BEGIN
    UPDATE case_sla SET next_at = '1970-01-01 00:00:00'
        WHERE case_id IN (SELECT id FROM cases WHERE customer_id = NEW.id AND status NOT IN ('solved', 'closed'));
END;
