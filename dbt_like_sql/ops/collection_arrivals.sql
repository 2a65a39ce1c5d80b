-- description: How each object a webhook or the history import can bring first arrived, once per channel: a GitHub workflow run attempt (from workflow_run deliveries), a GitLab pipeline (pipeline deliveries), a PagerDuty incident (incident.* deliveries about the incident itself; its repo is the PagerDuty service id). channel is 'import' for a delivery the history import wrote (its delivery_id starts with 'import:'), else 'webhook'. object_key is core.pipeline_runs.run_key or core.incidents.incident_key. created_at is when the object was created (a later run attempt: when it started; an incident whose delivery carries no creation time: when the delivery's event occurred); the row is the channel's first delivery of the object (by received_at).
-- materialization: incremental
-- unique_key: arrival_key
-- latest_by: received_at ASC, delivery_id ASC
WITH github_events AS (
    SELECT delivery_id, received_at, json_transform(payload, '{
        "workflow_run": {"id": "UBIGINT", "run_attempt": "BIGINT", "name": "VARCHAR",
            "path": "VARCHAR", "html_url": "VARCHAR", "created_at": "VARCHAR",
            "run_started_at": "VARCHAR"},
        "workflow": {"name": "VARCHAR"},
        "repository": {"full_name": "VARCHAR"}}') AS p
    FROM raw.events
    WHERE source = 'github' AND event_type = 'workflow_run'
), github AS (
    SELECT delivery_id, received_at,
        'github:' || p.workflow_run.id || ':' || coalesce(p.workflow_run.run_attempt, 1)
            AS object_key,
        'github' AS source,
        'workflow_run' AS object_kind,
        p.repository.full_name AS repo,
        p.workflow_run.id::VARCHAR AS provider_id,
        coalesce(p.workflow_run.run_attempt, 1) AS attempt,
        coalesce(nullif(p.workflow_run.name, ''), p.workflow.name, p.workflow_run.path) AS name,
        p.workflow_run.html_url AS url,
        -- A re-run's attempt keeps the run's created_at: it was created when it started.
        CASE WHEN coalesce(p.workflow_run.run_attempt, 1) = 1
            THEN dcicd_ts(p.workflow_run.created_at)
            ELSE coalesce(dcicd_ts(p.workflow_run.run_started_at),
                dcicd_ts(p.workflow_run.created_at))
        END AS created_at
    FROM github_events
    WHERE p.workflow_run.id IS NOT NULL
), gitlab_events AS (
    SELECT delivery_id, received_at, json_transform(payload, '{
        "object_attributes": {"id": "UBIGINT", "name": "VARCHAR", "ref": "VARCHAR",
            "url": "VARCHAR", "created_at": "VARCHAR"},
        "project": {"path_with_namespace": "VARCHAR", "web_url": "VARCHAR"}}') AS p
    FROM raw.events
    WHERE source = 'gitlab' AND event_type = 'pipeline'
), gitlab AS (
    SELECT delivery_id, received_at,
        'gitlab:' || p.object_attributes.id || ':1' AS object_key,
        'gitlab' AS source,
        'pipeline' AS object_kind,
        p.project.path_with_namespace AS repo,
        p.object_attributes.id::VARCHAR AS provider_id,
        1 AS attempt,
        coalesce(nullif(p.object_attributes.name, ''), p.object_attributes.ref) AS name,
        coalesce(p.object_attributes.url,
            p.project.web_url || '/-/pipelines/' || p.object_attributes.id) AS url,
        dcicd_ts(p.object_attributes.created_at) AS created_at
    FROM gitlab_events
    WHERE p.object_attributes.id IS NOT NULL
), pagerduty_events AS (
    SELECT delivery_id, received_at, json_transform(payload, '{"event": {
        "occurred_at": "VARCHAR", "data": {"id": "VARCHAR", "type": "VARCHAR",
            "title": "VARCHAR", "html_url": "VARCHAR", "created_at": "VARCHAR",
            "service": {"id": "VARCHAR"}, "incident": {"id": "VARCHAR"}}}}') AS p
    FROM raw.events
    WHERE source = 'pagerduty' AND starts_with(event_type, 'incident.')
), pagerduty AS (
    -- Only deliveries carrying the incident itself (as core.incidents reads them): a note or
    -- a responder request names its incident but not its service.
    SELECT delivery_id, received_at,
        'pagerduty:' || p.event.data.id AS object_key,
        'pagerduty' AS source,
        'incident' AS object_kind,
        coalesce(p.event.data.service.id, '(no service)') AS repo,
        p.event.data.id AS provider_id,
        1 AS attempt,
        p.event.data.title AS name,
        p.event.data.html_url AS url,
        coalesce(dcicd_ts(p.event.data.created_at), dcicd_ts(p.event.occurred_at)) AS created_at
    FROM pagerduty_events
    WHERE p.event.data.id IS NOT NULL
        AND coalesce(p.event.data.type = 'incident',
            p.event.data.type IS NULL AND p.event.data.incident.id IS NULL)
), arrivals AS (
    SELECT *,
        CASE WHEN starts_with(delivery_id, 'import:') THEN 'import' ELSE 'webhook' END AS channel
    FROM (SELECT * FROM github
        UNION ALL BY NAME SELECT * FROM gitlab
        UNION ALL BY NAME SELECT * FROM pagerduty)
)
SELECT
    object_key || '|' || channel AS arrival_key,
    object_key, source, object_kind, repo, provider_id, attempt, name, url, channel,
    coalesce(created_at, received_at) AS created_at,
    delivery_id,
    received_at
FROM arrivals
