-- The live case stream reads case events of every case in (created_at, id) order.
CREATE INDEX case_events_created ON case_events (created_at, id);
-- The inbox walks running deadlines in (due, case) order and stops at the page's end.
CREATE INDEX case_sla_due_case ON case_sla (due_at, case_id) WHERE due_at IS NOT NULL;
-- "Breaching soon" counts open breaches without scanning every deadline.
CREATE INDEX case_sla_breached ON case_sla (case_id) WHERE breached;
