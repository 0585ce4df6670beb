DROP TRIGGER alerts_notify;
