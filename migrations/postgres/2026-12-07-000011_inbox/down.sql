DROP INDEX case_events_created;
