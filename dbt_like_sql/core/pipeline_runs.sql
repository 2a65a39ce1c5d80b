-- description: One CI run attempt: GitHub workflow runs and GitLab pipelines, each at its latest known state; service is its repository's, or in a repository services share the one whose workflow patterns match (core.run_services has every service a run builds).
-- materialization: incremental
-- unique_key: run_key
-- latest_by: (status = 'completed') DESC, finished_at DESC NULLS LAST, last_received_at DESC
WITH github_events AS (
    SELECT received_at, json_transform(payload, '{
        "workflow_run": {"id": "UBIGINT", "run_attempt": "BIGINT", "run_number": "BIGINT",
            "name": "VARCHAR", "path": "VARCHAR", "event": "VARCHAR", "status": "VARCHAR",
            "conclusion": "VARCHAR", "head_branch": "VARCHAR", "head_sha": "VARCHAR",
            "created_at": "VARCHAR", "run_started_at": "VARCHAR", "updated_at": "VARCHAR",
            "actor": {"login": "VARCHAR"}},
        "workflow": {"name": "VARCHAR"},
        "repository": {"full_name": "VARCHAR", "default_branch": "VARCHAR"}}') AS p
    FROM raw.events
    WHERE source = 'github' AND event_type = 'workflow_run'
), github AS (
    SELECT
        'github:' || p.workflow_run.id || ':' || coalesce(p.workflow_run.run_attempt, 1) AS run_key,
        'github' AS source,
        p.repository.full_name AS repo,
        coalesce(nullif(p.workflow_run.name, ''), p.workflow.name, p.workflow_run.path) AS workflow,
        p.workflow_run.path AS workflow_path,
        p.workflow_run.head_branch AS branch,
        p.workflow_run.head_sha AS sha,
        p.workflow_run.status AS status,
        CASE WHEN p.workflow_run.status = 'completed'
            THEN dcicd_conclusion(p.workflow_run.conclusion) END AS conclusion,
        CASE WHEN coalesce(p.workflow_run.run_attempt, 1) = 1 THEN dcicd_ts(p.workflow_run.created_at)
            ELSE coalesce(dcicd_ts(p.workflow_run.run_started_at), dcicd_ts(p.workflow_run.created_at))
        END AS queued_at,
        coalesce(dcicd_ts(p.workflow_run.run_started_at), dcicd_ts(p.workflow_run.created_at))
            AS started_at,
        CASE WHEN p.workflow_run.status = 'completed'
            THEN dcicd_ts(p.workflow_run.updated_at) END AS finished_at,
        NULL::DOUBLE AS reported_duration_s,
        coalesce(p.workflow_run.run_attempt, 1) AS attempt,
        p.workflow_run.id::VARCHAR AS provider_run_id,
        p.workflow_run.run_number AS run_number,
        p.workflow_run.event AS trigger_event,
        p.workflow_run.actor.login AS actor,
        coalesce(p.repository.default_branch, 'main') AS default_branch,
        received_at
    FROM github_events
), gitlab_events AS (
    SELECT received_at, json_transform(payload, '{
        "object_attributes": {"id": "UBIGINT", "name": "VARCHAR", "ref": "VARCHAR",
            "sha": "VARCHAR", "source": "VARCHAR", "status": "VARCHAR", "created_at": "VARCHAR",
            "finished_at": "VARCHAR", "duration": "DOUBLE", "queued_duration": "DOUBLE"},
        "user": {"username": "VARCHAR"},
        "project": {"path_with_namespace": "VARCHAR", "default_branch": "VARCHAR"}}') AS p
    FROM raw.events
    WHERE source = 'gitlab' AND event_type = 'pipeline'
), gitlab AS (
    SELECT
        'gitlab:' || p.object_attributes.id || ':1' AS run_key,
        'gitlab' AS source,
        p.project.path_with_namespace AS repo,
        coalesce(nullif(p.object_attributes.name, ''), '.gitlab-ci.yml') AS workflow,
        '.gitlab-ci.yml' AS workflow_path,
        p.object_attributes.ref AS branch,
        p.object_attributes.sha AS sha,
        CASE WHEN p.object_attributes.status IN ('success', 'failed', 'canceled', 'skipped')
            THEN 'completed' ELSE p.object_attributes.status END AS status,
        CASE WHEN p.object_attributes.status IN ('success', 'failed', 'canceled', 'skipped')
            THEN dcicd_conclusion(p.object_attributes.status) END AS conclusion,
        dcicd_ts(p.object_attributes.created_at) AS queued_at,
        dcicd_ts(p.object_attributes.created_at)
            + to_microseconds((coalesce(p.object_attributes.queued_duration, 0) * 1e6)::BIGINT)
            AS started_at,
        CASE WHEN p.object_attributes.status IN ('success', 'failed', 'canceled', 'skipped')
            THEN dcicd_ts(p.object_attributes.finished_at) END AS finished_at,
        p.object_attributes.duration AS reported_duration_s,
        1 AS attempt,
        p.object_attributes.id::VARCHAR AS provider_run_id,
        NULL::BIGINT AS run_number,
        p.object_attributes.source AS trigger_event,
        p.user.username AS actor,
        coalesce(p.project.default_branch, 'main') AS default_branch,
        received_at
    FROM gitlab_events
), states AS (
    -- One row per event: the build keeps each key's latest (see latest_by above).
    SELECT * FROM (SELECT * FROM github UNION ALL BY NAME SELECT * FROM gitlab)
)
SELECT
    l.run_key, l.source, l.repo,
    -- The repository's service; in one several services share, the first (as configured)
    -- whose workflow patterns match the run's workflow, else the repository (core.run_services
    -- maps such a run by the paths its commits touched too).
    coalesce(s.service, (
        SELECT arg_min(p.service, p.position)
        FROM config.service_paths p
        WHERE p.repo = l.repo AND p.shared AND len(list_filter(p.workflows, lambda pattern:
            l.workflow GLOB pattern OR coalesce(l.workflow_path GLOB pattern, false))) > 0
    ), l.repo) AS service,
    l.workflow,
    l.workflow_path, l.branch, l.sha, l.status, l.conclusion, l.queued_at, l.started_at,
    l.finished_at,
    -- Never below 0 (a clock skew of the provider); NULL until the run finishes.
    CASE WHEN l.reported_duration_s IS NOT NULL OR epoch(l.finished_at - l.started_at) IS NOT NULL
        THEN greatest(0,
        coalesce(l.reported_duration_s, epoch(l.finished_at) - epoch(l.started_at))) END
        AS duration_s,
    epoch(l.started_at) - epoch(l.queued_at) AS queue_s,
    -- Duration figures count only completed runs that ran: a skipped run, or one waiting for a
    -- maintainer's approval (GitHub's action_required, 0 seconds), would drag them down.
    coalesce(l.status = 'completed' AND l.conclusion IN ('success', 'failure', 'timed_out',
        'cancelled'), false) AS ran,
    l.attempt, l.provider_run_id, l.run_number, l.trigger_event, l.actor, l.default_branch,
    l.branch = l.default_branch AS on_default_branch,
    l.received_at AS last_received_at
FROM states l
LEFT JOIN config.service_repositories s USING (repo)
