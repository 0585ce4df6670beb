DROP INDEX case_sla_breached;
DROP INDEX case_sla_due_case;
DROP INDEX case_events_created;
