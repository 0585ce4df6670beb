-- Secret rotation: the secret a subscription had before the last rotation keeps signing
-- deliveries (beside the new one) until it expires, so receivers can switch without losing any.
ALTER TABLE webhook_subscriptions ADD COLUMN previous_secret TEXT;
ALTER TABLE webhook_subscriptions ADD COLUMN previous_secret_expires_at TIMESTAMP;
