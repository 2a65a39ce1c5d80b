-- description: One step of a GitHub workflow job at its latest known state (the `steps` of the workflow_job payload), with its duration: what the cache advice reads to find the work every run repeats. GitLab jobs report no steps.
-- materialization: incremental
-- unique_key: step_key
-- latest_by: (status = 'completed') DESC, (finished_at IS NOT NULL) DESC, last_received_at DESC
WITH github_events AS (
    SELECT received_at, json_transform(payload, '{
        "workflow_job": {"id": "UBIGINT",
            "steps": [{"name": "VARCHAR", "status": "VARCHAR", "conclusion": "VARCHAR",
                "number": "BIGINT", "started_at": "VARCHAR", "completed_at": "VARCHAR"}]}}') AS p
    FROM raw.events
    WHERE source = 'github' AND event_type = 'workflow_job'
), steps AS (
    SELECT received_at, p.workflow_job.id AS job_id, unnest(p.workflow_job.steps) AS step
    FROM github_events
    WHERE len(p.workflow_job.steps) > 0
)
SELECT
    'github:' || job_id || ':' || step.number AS step_key,
    'github:' || job_id AS job_key,
    step.number AS number,
    step.name AS step_name,
    step.status AS status,
    CASE WHEN step.status = 'completed' THEN dcicd_conclusion(step.conclusion) END AS conclusion,
    dcicd_ts(step.started_at) AS started_at,
    CASE WHEN step.status = 'completed' THEN dcicd_ts(step.completed_at) END AS finished_at,
    -- Never below 0, as a job's (GitHub rounds step times to the second).
    CASE WHEN step.status = 'completed' AND dcicd_ts(step.started_at) IS NOT NULL
        AND dcicd_ts(step.completed_at) IS NOT NULL THEN greatest(0,
        epoch(dcicd_ts(step.completed_at)) - epoch(dcicd_ts(step.started_at))) END AS duration_s,
    received_at AS last_received_at
FROM steps
