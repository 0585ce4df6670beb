DROP TRIGGER routing_signals_notify;
DROP TRIGGER alerts_notify;
