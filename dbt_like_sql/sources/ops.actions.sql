-- The automation's audit (dcicd_platform/automation/responders.py writes it): one row per
-- decision. A source: no model builds it; it is made here before a model reads it.
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.actions (
    action_id VARCHAR PRIMARY KEY, kind VARCHAR, anomaly_key VARCHAR, service VARCHAR,
    mode VARCHAR, decision VARCHAR, reason VARCHAR, target VARCHAR, request_status INTEGER,
    attempts INTEGER, page BOOLEAN, requested_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
    entity_key VARCHAR);
-- a warehouse from before entity_key (what was acted on: the deployment rolled back, the run re-run)
ALTER TABLE ops.actions ADD COLUMN IF NOT EXISTS entity_key VARCHAR;
