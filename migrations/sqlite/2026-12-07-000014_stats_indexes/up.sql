-- The supervisor console's figures read the cases created and solved in the last day(s) and
-- the breaches of the last days.
CREATE INDEX cases_created_idx ON cases (created_at);
CREATE INDEX cases_solved_idx ON cases (solved_at) WHERE solved_at IS NOT NULL;
CREATE INDEX sla_fired_milestone_due ON sla_fired (milestone, due_at);
