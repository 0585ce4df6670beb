ALTER TABLE webhook_subscriptions DROP COLUMN previous_secret_expires_at;
ALTER TABLE webhook_subscriptions DROP COLUMN previous_secret;
