DROP TRIGGER webhook_fanout ON case_events;
DROP FUNCTION caseflow_webhook_fanout();
DROP TABLE webhook_deliveries;
DROP TABLE webhook_subscriptions;
