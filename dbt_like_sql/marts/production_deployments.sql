-- description: One production deployment with its DORA facts: its changes and their median lead time, whether it failed (rolled back, by a later deployment or by the automation, or caused an incident), and when the next production deployment recovered it; deployed_on is its day in the reporting time zone.
WITH production AS (
    SELECT deployment_key, service, repo, environment, sha, deployed_at, is_rollback
    FROM core.deployments
    WHERE is_production AND status = 'success'
), ordered AS (
    SELECT *,
        lag(deployment_key) OVER w AS previous_key,
        lead(deployed_at) OVER w AS next_deployed_at
    FROM production
    WINDOW w AS (PARTITION BY service ORDER BY deployed_at, deployment_key)
), rolled_back AS (
    -- A rollback marks the production deployment it replaced (the latest before it) as failed.
    SELECT previous_key AS deployment_key, min(deployment_key) AS rolled_back_by
    FROM ordered
    WHERE is_rollback AND previous_key IS NOT NULL
    GROUP BY previous_key
), rolled_back_by_automation AS (
    -- A rollback the automation executed (any backend: the provider may never report it).
    SELECT entity_key AS deployment_key, min(action_id) AS rollback_action_id
    FROM ops.actions
    WHERE kind = 'rollback' AND decision = 'executed' AND entity_key IS NOT NULL
    GROUP BY 1
), caused AS (
    SELECT caused_by_deployment_key AS deployment_key, count(*) AS incidents_caused
    FROM core.incidents
    WHERE caused_by_deployment_key IS NOT NULL
    GROUP BY 1
), changes AS (
    SELECT deployment_key, count(*) AS changes, median(lead_time_s) AS lead_time_median_s
    FROM marts.deployment_changes
    GROUP BY 1
)
SELECT o.deployment_key, o.service, o.repo, o.environment, o.sha, o.deployed_at,
    dcicd_local_day(o.deployed_at, (SELECT time_zone FROM config.reporting)) AS deployed_on,
    o.is_rollback,
    coalesce(c.changes, 0) AS changes, c.lead_time_median_s,
    r.rolled_back_by, a.rollback_action_id, coalesce(i.incidents_caused, 0) AS incidents_caused,
    (r.rolled_back_by IS NOT NULL OR a.rollback_action_id IS NOT NULL
        OR coalesce(i.incidents_caused, 0) > 0) AS is_failed,
    CASE WHEN r.rolled_back_by IS NOT NULL OR a.rollback_action_id IS NOT NULL
        OR i.incidents_caused > 0 THEN o.next_deployed_at END AS recovered_at,
    CASE WHEN r.rolled_back_by IS NOT NULL OR a.rollback_action_id IS NOT NULL
        OR i.incidents_caused > 0
        THEN epoch(o.next_deployed_at) - epoch(o.deployed_at) END AS recovery_s
FROM ordered o
LEFT JOIN rolled_back r USING (deployment_key)
LEFT JOIN rolled_back_by_automation a USING (deployment_key)
LEFT JOIN caused i USING (deployment_key)
LEFT JOIN changes c USING (deployment_key)
