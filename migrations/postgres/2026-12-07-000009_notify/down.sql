DROP TRIGGER alerts_notify ON alerts;
DROP FUNCTION caseflow_notify();
