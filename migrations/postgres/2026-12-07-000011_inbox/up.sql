-- The live case stream reads case events of every case in (created_at, id) order.
CREATE INDEX case_events_created ON case_events (created_at, id);
