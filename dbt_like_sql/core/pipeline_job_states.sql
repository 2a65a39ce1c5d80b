-- description: The latest reported state of each CI job, from its own events alone (GitHub workflow jobs; GitLab jobs from job events and from pipeline events), with the real-world quirks normalized: a duration never below 0, and whether the job ran at all.
-- materialization: incremental
-- unique_key: job_key
-- latest_by: (status = 'completed') DESC, (finished_at IS NOT NULL) DESC, last_received_at DESC
WITH github_events AS (
    SELECT received_at, json_transform(payload, '{
        "workflow_job": {"id": "UBIGINT", "run_id": "UBIGINT", "run_attempt": "BIGINT",
            "name": "VARCHAR", "workflow_name": "VARCHAR", "head_sha": "VARCHAR",
            "head_branch": "VARCHAR", "status": "VARCHAR", "conclusion": "VARCHAR",
            "created_at": "VARCHAR", "started_at": "VARCHAR", "completed_at": "VARCHAR",
            "labels": ["VARCHAR"], "runner_id": "BIGINT", "runner_name": "VARCHAR",
            "runner_group_name": "VARCHAR"},
        "repository": {"full_name": "VARCHAR"}}') AS p
    FROM raw.events
    WHERE source = 'github' AND event_type = 'workflow_job'
), github AS (
    SELECT
        'github:' || p.workflow_job.id AS job_key,
        'github:' || p.workflow_job.run_id || ':' || coalesce(p.workflow_job.run_attempt, 1)
            AS run_key,
        p.repository.full_name AS repo,
        p.workflow_job.workflow_name AS workflow,
        p.workflow_job.name AS job_name,
        NULL AS stage,
        p.workflow_job.head_sha AS sha,
        nullif(array_to_string(p.workflow_job.labels, ','), '') AS runner_label,
        p.workflow_job.runner_name AS runner_name,
        -- GitHub reports runner_id 0 (or null) and no runner_name for a job no runner took.
        coalesce(p.workflow_job.runner_id, 0) <> 0
            OR coalesce(p.workflow_job.runner_name, '') <> '' AS has_runner,
        list_contains(p.workflow_job.labels, 'self-hosted')
            OR coalesce(p.workflow_job.runner_group_name NOT IN ('GitHub Actions', 'Default'), false)
            AS self_hosted,
        p.workflow_job.status AS status,
        CASE WHEN p.workflow_job.status = 'completed'
            THEN dcicd_conclusion(p.workflow_job.conclusion) END AS conclusion,
        coalesce(dcicd_ts(p.workflow_job.created_at), dcicd_ts(p.workflow_job.started_at))
            AS queued_at,
        CASE WHEN p.workflow_job.status IN ('in_progress', 'completed')
            THEN dcicd_ts(p.workflow_job.started_at) END AS started_at,
        CASE WHEN p.workflow_job.status = 'completed'
            THEN dcicd_ts(p.workflow_job.completed_at) END AS finished_at,
        NULL::DOUBLE AS reported_duration_s,
        coalesce(p.workflow_job.run_attempt, 1) AS attempt,
        received_at
    FROM github_events
), gitlab_job_events AS (
    SELECT received_at, json_transform(payload, '{
        "build_id": "UBIGINT", "pipeline_id": "UBIGINT", "build_name": "VARCHAR",
        "build_stage": "VARCHAR", "build_status": "VARCHAR", "sha": "VARCHAR",
        "build_created_at": "VARCHAR", "build_started_at": "VARCHAR",
        "build_finished_at": "VARCHAR", "build_duration": "DOUBLE",
        "project_name": "VARCHAR", "repository": {"homepage": "VARCHAR"},
        "runner": {"description": "VARCHAR", "is_shared": "BOOLEAN", "tags": ["VARCHAR"]}}') AS p
    FROM raw.events
    WHERE source = 'gitlab' AND event_type = 'build'
), gitlab_pipeline_builds AS (
    SELECT received_at, p.project.path_with_namespace AS repo, p.object_attributes.id AS run_id,
        p.object_attributes.sha AS sha, unnest(p.builds) AS b
    FROM (
        SELECT received_at, json_transform(payload, '{
            "object_attributes": {"id": "UBIGINT", "sha": "VARCHAR"},
            "project": {"path_with_namespace": "VARCHAR"},
            "builds": [{"id": "UBIGINT", "name": "VARCHAR", "stage": "VARCHAR",
                "status": "VARCHAR", "created_at": "VARCHAR", "started_at": "VARCHAR",
                "finished_at": "VARCHAR", "duration": "DOUBLE",
                "runner": {"description": "VARCHAR", "is_shared": "BOOLEAN",
                    "tags": ["VARCHAR"]}}]}') AS p
        FROM raw.events
        WHERE source = 'gitlab' AND event_type = 'pipeline'
    )
), gitlab_jobs AS (
    SELECT
        p.build_id AS id, p.pipeline_id AS run_id,
        coalesce(regexp_extract(p.repository.homepage, '^[a-z]+://[^/]+/(.+?)/?$', 1),
            replace(p.project_name, ' ', '')) AS repo,
        p.build_name AS name, p.build_stage AS stage, p.sha AS sha, p.build_status AS status,
        p.build_created_at AS created_at, p.build_started_at AS started_at,
        p.build_finished_at AS finished_at, p.build_duration AS duration,
        p.runner AS runner, received_at
    FROM gitlab_job_events
    UNION ALL
    SELECT b.id, run_id, repo, b.name, b.stage, sha, b.status, b.created_at, b.started_at,
        b.finished_at, b.duration, b.runner, received_at
    FROM gitlab_pipeline_builds
), gitlab AS (
    SELECT
        'gitlab:' || id AS job_key,
        'gitlab:' || run_id || ':1' AS run_key,
        nullif(repo, '') AS repo,
        NULL AS workflow,
        name AS job_name,
        stage,
        sha,
        coalesce(nullif(array_to_string(runner.tags, ','), ''),
            CASE WHEN runner.is_shared THEN 'gitlab-shared' END) AS runner_label,
        runner.description AS runner_name,
        -- GitLab sets started_at when a runner picks the job up.
        dcicd_ts(started_at) IS NOT NULL AS has_runner,
        NOT coalesce(runner.is_shared, true) AS self_hosted,
        CASE WHEN status IN ('success', 'failed', 'canceled', 'skipped')
            THEN 'completed' ELSE status END AS status,
        CASE WHEN status IN ('success', 'failed', 'canceled', 'skipped')
            THEN dcicd_conclusion(status) END AS conclusion,
        dcicd_ts(created_at) AS queued_at,
        dcicd_ts(started_at) AS started_at,
        CASE WHEN status IN ('success', 'failed', 'canceled', 'skipped')
            THEN coalesce(dcicd_ts(finished_at), dcicd_ts(started_at)
                + to_microseconds((duration * 1e6)::BIGINT)) END AS finished_at,
        duration AS reported_duration_s,
        1 AS attempt,
        received_at
    FROM gitlab_jobs
), states AS (
    -- One row per event: the build keeps each key's latest (see latest_by above).
    SELECT * FROM (SELECT * FROM github UNION ALL BY NAME SELECT * FROM gitlab)
), timed AS (
    SELECT l.*,
        -- GitHub reports skipped and cancelled jobs finishing up to minutes before they start.
        CASE WHEN l.reported_duration_s IS NOT NULL OR epoch(l.finished_at - l.started_at) IS NOT NULL
        THEN greatest(0,
            coalesce(l.reported_duration_s, epoch(l.finished_at) - epoch(l.started_at))) END
            AS duration_s,
        epoch(l.started_at) - epoch(l.queued_at) AS queue_s,
        -- A job ran when a runner executed it: not skipped, not cancelled before a runner took
        -- it, not waiting on an approval (CONTRACTS.md section 5, CI durations and CI cost).
        CASE l.status
            WHEN 'in_progress' THEN true
            WHEN 'completed' THEN l.started_at IS NOT NULL
                AND (l.conclusion IN ('success', 'failure', 'timed_out')
                    OR (l.conclusion = 'cancelled' AND l.has_runner))
            ELSE false
        END AS ran
    FROM states l
)
SELECT
    job_key, run_key, repo, workflow, job_name, stage, sha, runner_label, runner_name,
    self_hosted, status, conclusion, queued_at, started_at, finished_at, duration_s, queue_s,
    attempt, ran,
    -- GitHub bills a job that ran its minutes rounded up, at least one; one that never ran, none.
    CASE WHEN ran AND duration_s IS NOT NULL
        THEN greatest(1, ceil(duration_s / 60))::BIGINT ELSE 0 END AS billable_minutes,
    received_at AS last_received_at
FROM timed
