-- Routing: what a case requires, what an agent can take, what the router decided.

-- When the case last started waiting for an agent (created unassigned, or unassigned again).
-- The router serves by it, so a customer who writes again keeps their place in line.
ALTER TABLE cases ADD COLUMN waiting_since TIMESTAMP;
-- A pinned case stays with its assignee: never re-routed automatically.
ALTER TABLE cases ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE cases SET waiting_since = created_at WHERE assignee_id IS NULL;
-- Offer mode: the agent a waiting case is offered to, until when. Written only by routing
-- and the accept/decline use cases (not part of whole-row case updates).
ALTER TABLE cases ADD COLUMN offered_to TEXT REFERENCES agents (id);
ALTER TABLE cases ADD COLUMN offer_expires_at TIMESTAMP;
CREATE INDEX cases_offer_expiry ON cases (offer_expires_at) WHERE offered_to IS NOT NULL;
CREATE INDEX cases_offered_to ON cases (offered_to) WHERE offered_to IS NOT NULL;

ALTER TABLE agents ADD COLUMN last_assigned_at TIMESTAMP;

-- Skills a case needs (required, at a minimum level) or prefers (optional).
CREATE TABLE case_skills (
    case_id TEXT NOT NULL REFERENCES cases (id),
    skill_id TEXT NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    min_level INTEGER NOT NULL,
    required BOOLEAN NOT NULL,
    PRIMARY KEY (case_id, skill_id)
);
CREATE INDEX case_skills_skill ON case_skills (skill_id);

-- How many active cases an agent takes per channel; without a row, `agents.max_load`.
CREATE TABLE agent_capacities (
    agent_id TEXT NOT NULL REFERENCES agents (id),
    channel TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    PRIMARY KEY (agent_id, channel)
);

-- The audit log of an agent: presence, skills, capacities, profile changes, who made them.
CREATE TABLE agent_events (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents (id),
    kind TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    data TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX agent_events_agent ON agent_events (agent_id, id);

-- Every routing decision with its explanation (JSON), newest last.
CREATE TABLE routing_decisions (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases (id),
    agent_id TEXT REFERENCES agents (id),
    outcome TEXT NOT NULL,
    explanation TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX routing_decisions_case ON routing_decisions (case_id, id);

-- What changed since the router last looked: one row per changed case, agent or customer,
-- written by triggers in the same transaction as the change (so no write path can forget
-- it) and deleted by the router once it has read the entity again. `seq` moves on every
-- change: the router deletes a row only if it is still the version it read, so a change
-- committed while the router worked leaves its row in place (ADR 0008).
CREATE TABLE routing_signals (
    kind TEXT NOT NULL,
    ref_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (kind, ref_id)
);

CREATE FUNCTION caseflow_routing_signal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r RECORD;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    IF TG_TABLE_NAME = 'cases' THEN
        INSERT INTO routing_signals (kind, ref_id, seq) VALUES ('case', r.id, 0)
            ON CONFLICT (kind, ref_id) DO UPDATE SET seq = routing_signals.seq + 1;
    ELSIF TG_TABLE_NAME = 'case_skills' THEN
        INSERT INTO routing_signals (kind, ref_id, seq) VALUES ('case', r.case_id, 0)
            ON CONFLICT (kind, ref_id) DO UPDATE SET seq = routing_signals.seq + 1;
    ELSIF TG_TABLE_NAME = 'agents' THEN
        INSERT INTO routing_signals (kind, ref_id, seq) VALUES ('agent', r.id, 0)
            ON CONFLICT (kind, ref_id) DO UPDATE SET seq = routing_signals.seq + 1;
    ELSIF TG_TABLE_NAME = 'customers' THEN
        INSERT INTO routing_signals (kind, ref_id, seq) VALUES ('customer', r.id, 0)
            ON CONFLICT (kind, ref_id) DO UPDATE SET seq = routing_signals.seq + 1;
    ELSE
        INSERT INTO routing_signals (kind, ref_id, seq) VALUES ('agent', r.agent_id, 0)
            ON CONFLICT (kind, ref_id) DO UPDATE SET seq = routing_signals.seq + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER routing_case_inserted AFTER INSERT ON cases
    FOR EACH ROW EXECUTE FUNCTION caseflow_routing_signal();
CREATE TRIGGER routing_case_changed AFTER UPDATE OF status, priority, channel, team_id, assignee_id, customer_id, waiting_since, offered_to ON cases
    FOR EACH ROW EXECUTE FUNCTION caseflow_routing_signal();
CREATE TRIGGER routing_case_skills_inserted AFTER INSERT ON case_skills
    FOR EACH ROW EXECUTE FUNCTION caseflow_routing_signal();
CREATE TRIGGER routing_case_skills_deleted AFTER DELETE ON case_skills
    FOR EACH ROW EXECUTE FUNCTION caseflow_routing_signal();
CREATE TRIGGER routing_agent_inserted AFTER INSERT ON agents
    FOR EACH ROW EXECUTE FUNCTION caseflow_routing_signal();
CREATE TRIGGER routing_agent_changed AFTER UPDATE OF team_id, presence, max_load, active ON agents
    FOR EACH ROW EXECUTE FUNCTION caseflow_routing_signal();
CREATE TRIGGER routing_agent_skills_inserted AFTER INSERT ON agent_skills
    FOR EACH ROW EXECUTE FUNCTION caseflow_routing_signal();
CREATE TRIGGER routing_agent_skills_deleted AFTER DELETE ON agent_skills
    FOR EACH ROW EXECUTE FUNCTION caseflow_routing_signal();
CREATE TRIGGER routing_agent_capacities_inserted AFTER INSERT ON agent_capacities
    FOR EACH ROW EXECUTE FUNCTION caseflow_routing_signal();
CREATE TRIGGER routing_agent_capacities_deleted AFTER DELETE ON agent_capacities
    FOR EACH ROW EXECUTE FUNCTION caseflow_routing_signal();
CREATE TRIGGER routing_customer_changed AFTER UPDATE OF tier, value ON customers
    FOR EACH ROW EXECUTE FUNCTION caseflow_routing_signal();
