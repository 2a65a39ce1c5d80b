-- description: One deployment: GitHub deployments (from their statuses), GitLab deployments, and successful default-branch runs of a service's configured deployment workflows; production and rollback flags per CONTRACTS.md §5. In a repository services share, a deployment belongs to the services it names (payload `service` or task `deploy:<service>`, an environment a service lists, an environment named after a service), else to each of them (keyed `<key>@<service>`).
WITH services AS (
    SELECT r.service, r.repo, r.shared, s.production_environments, s.deployment_workflows
    FROM config.service_paths r JOIN config.services s USING (service)
), github_statuses AS (
    SELECT received_at, json_transform(payload, '{
        "deployment": {"id": "UBIGINT", "sha": "VARCHAR", "ref": "VARCHAR",
            "environment": "VARCHAR", "created_at": "VARCHAR", "task": "VARCHAR",
            "payload": "JSON"},
        "deployment_status": {"id": "UBIGINT", "state": "VARCHAR", "created_at": "VARCHAR"},
        "repository": {"full_name": "VARCHAR"}}') AS p
    FROM raw.events
    WHERE source = 'github' AND event_type = 'deployment_status'
), github AS (
    SELECT
        'github:' || p.deployment.id AS deployment_key,
        'github' AS source,
        any_value(p.repository.full_name) AS repo,
        any_value(p.deployment.environment) AS environment,
        any_value(p.deployment.sha) AS sha,
        any_value(p.deployment.ref) AS ref,
        -- The service a deployment names itself, in a repository services share.
        any_value(coalesce(json_extract_string(p.deployment.payload, '$.service'),
            nullif(regexp_extract(p.deployment.task, '^deploy:(.+)$', 1), '')))
            AS named_service,
        CASE WHEN bool_or(p.deployment_status.state = 'success') THEN 'success'
            ELSE arg_max(p.deployment_status.state,
                (dcicd_ts(p.deployment_status.created_at), p.deployment_status.id))
        END AS status,
        min(dcicd_ts(p.deployment_status.created_at))
            FILTER (WHERE p.deployment_status.state = 'success') AS deployed_at,
        min(dcicd_ts(p.deployment.created_at)) AS created_at
    FROM github_statuses
    GROUP BY p.deployment.id
), gitlab_events AS (
    SELECT received_at, json_transform(payload, '{
        "deployment_id": "UBIGINT", "status": "VARCHAR", "status_changed_at": "VARCHAR",
        "environment": "VARCHAR", "short_sha": "VARCHAR", "commit_url": "VARCHAR",
        "ref": "VARCHAR", "project": {"path_with_namespace": "VARCHAR"}}') AS p
    FROM raw.events
    WHERE source = 'gitlab' AND event_type = 'deployment'
), gitlab AS (
    SELECT
        'gitlab:' || any_value(p.project.path_with_namespace) || ':' || p.deployment_id
            AS deployment_key,
        'gitlab' AS source,
        any_value(p.project.path_with_namespace) AS repo,
        any_value(p.environment) AS environment,
        any_value(coalesce(nullif(regexp_extract(p.commit_url, '/commit/([0-9a-fA-F]{7,64})', 1),
            ''), p.short_sha)) AS sha,
        any_value(p.ref) AS ref,
        CASE WHEN bool_or(p.status = 'success') THEN 'success'
            ELSE CASE arg_max(p.status, dcicd_ts(p.status_changed_at))
                WHEN 'failed' THEN 'failure' WHEN 'canceled' THEN 'cancelled'
                ELSE arg_max(p.status, dcicd_ts(p.status_changed_at)) END
        END AS status,
        min(dcicd_ts(p.status_changed_at)) FILTER (WHERE p.status = 'success') AS deployed_at,
        min(dcicd_ts(p.status_changed_at)) AS created_at
    FROM gitlab_events
    GROUP BY p.project.path_with_namespace, p.deployment_id
), provider_deployments AS (
    SELECT * FROM github UNION ALL BY NAME SELECT * FROM gitlab
), shared_repository AS (
    -- In a repository services share (by paths), a deployment belongs to the services it
    -- names, by the first rule that names any: its payload's `service` or its task
    -- `deploy:<service>` (GitHub); an environment the service lists in production_environments;
    -- an environment named after the service, word by word (`production-payments`).
    -- One that names none deploys the whole repository: a deployment of each of its services.
    -- A deployment of several services is keyed once per service (`<key>@<service>`).
    SELECT d.deployment_key, s.service,
        CASE WHEN lower(d.named_service) = lower(s.service) THEN 1
            WHEN list_contains(list_transform(s.production_environments, lambda e: lower(e)),
                lower(d.environment)) THEN 2
            WHEN contains('/' || regexp_replace(lower(d.environment), '[-_/.: ]+', '/', 'g') || '/',
                '/' || regexp_replace(lower(s.service), '[-_/.: ]+', '/', 'g') || '/') THEN 3
        END AS named_by
    FROM provider_deployments d
    JOIN services s ON s.repo = d.repo AND s.shared
), shared_attributed AS (
    SELECT deployment_key, service, count(*) OVER (PARTITION BY deployment_key) AS services
    FROM (
        SELECT * FROM shared_repository
        QUALIFY named_by IS NOT DISTINCT FROM min(named_by) OVER (PARTITION BY deployment_key)
    )
), by_environment AS (
    SELECT d.* REPLACE (CASE WHEN a.services > 1 THEN d.deployment_key || '@' || a.service
            ELSE d.deployment_key END AS deployment_key),
        coalesce(s.service, d.repo) AS service,
        dcicd_is_production_env(d.environment, s.production_environments) AS is_production
    FROM provider_deployments d
    LEFT JOIN shared_attributed a USING (deployment_key)
    LEFT JOIN services s ON s.repo = d.repo AND (NOT s.shared OR s.service = a.service)
), by_workflow AS (
    -- Teams that deploy from CI without environments name their deployment workflows.
    SELECT 'workflow:' || r.run_key || CASE WHEN count(*) OVER (PARTITION BY r.run_key) > 1
            THEN '@' || s.service ELSE '' END AS deployment_key, r.source, r.repo,
        'workflow:' || r.workflow AS environment, r.sha, r.branch AS ref, 'success' AS status,
        r.finished_at AS deployed_at, r.queued_at AS created_at, s.service,
        true AS is_production
    FROM core.pipeline_runs r
    JOIN services s USING (repo)
    WHERE r.conclusion = 'success' AND r.on_default_branch
      AND len(s.deployment_workflows) > 0
      AND len(list_filter(s.deployment_workflows,
            lambda pattern: r.workflow GLOB pattern OR coalesce(r.workflow_path GLOB pattern, false))) > 0
), deployments AS (
    SELECT * FROM by_environment UNION ALL BY NAME SELECT * FROM by_workflow
), production AS (
    SELECT deployment_key, service, sha, deployed_at,
        min(deployed_at) OVER (PARTITION BY service, sha) AS sha_first_deployed_at
    FROM deployments
    WHERE is_production AND status = 'success' AND deployed_at IS NOT NULL
), rollbacks AS (
    -- A rollback redeploys a sha this service had in production before a newer one: going back.
    -- Deploying the newest sha again (another region, a redeploy) is not a rollback.
    SELECT deployment_key,
        coalesce(sha_first_deployed_at < max(sha_first_deployed_at) OVER (
            PARTITION BY service ORDER BY deployed_at, deployment_key
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false) AS is_rollback
    FROM production
)
SELECT d.deployment_key, d.source, d.service, d.repo, d.environment, d.sha, d.ref, d.status,
    CASE WHEN d.status = 'success' THEN d.deployed_at END AS deployed_at, d.created_at,
    d.is_production, coalesce(p.is_rollback, false) AS is_rollback
FROM deployments d
LEFT JOIN rollbacks p USING (deployment_key)
