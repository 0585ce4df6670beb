DROP TRIGGER webhook_fanout;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_subscriptions;
