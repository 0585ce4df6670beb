DROP TRIGGER routing_signals_notify ON routing_signals;
DROP TRIGGER alerts_notify ON alerts;
DROP FUNCTION caseflow_notify();
