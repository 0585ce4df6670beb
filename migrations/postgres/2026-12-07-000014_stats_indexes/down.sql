DROP INDEX sla_fired_milestone_due;
DROP INDEX cases_solved_idx;
DROP INDEX cases_created_idx;
