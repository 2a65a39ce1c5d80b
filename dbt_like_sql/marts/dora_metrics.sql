-- description: The DORA metrics per service (and '*' for the organisation) per day, ISO week and calendar month of the reporting time zone (config.reporting), as CONTRACTS.md §5 defines them, with the rework rate (DORA 2024: production deployments that are rework, marts.deployment_rework, among the period's deployments); periods with no activity have no row, and a figure with nothing to measure is NULL.
WITH grains AS (
    SELECT unnest(['day', 'week', 'month']) AS grain
), deployments AS (
    SELECT g.grain,
        dcicd_period_start(g.grain, d.deployed_at, (SELECT time_zone FROM config.reporting))
            AS period_start,
        d.*, r.is_rework
    FROM marts.production_deployments d
    JOIN marts.deployment_rework r USING (deployment_key), grains g
), changes AS (
    SELECT g.grain,
        dcicd_period_start(g.grain, c.deployed_at, (SELECT time_zone FROM config.reporting))
            AS period_start,
        c.*
    FROM marts.deployment_changes c, grains g
), incidents AS (
    SELECT g.grain,
        dcicd_period_start(g.grain, i.opened_at, (SELECT time_zone FROM config.reporting))
            AS period_start,
        i.*,
        epoch(i.resolved_at) - epoch(i.opened_at) AS restore_s
    FROM core.incidents i, grains g
    WHERE i.opened_at IS NOT NULL
), deployment_figures AS (
    SELECT coalesce(service, '*') AS service, grain, period_start,
        count(*) AS deployments,
        count(*) FILTER (WHERE is_failed) AS failed_deployments,
        median(recovery_s) FILTER (WHERE is_failed) AS recovery_median_s,
        count(*) FILTER (WHERE is_rework) AS rework_deployments
    FROM deployments
    GROUP BY GROUPING SETS ((service, grain, period_start), (grain, period_start))
), change_figures AS (
    -- The organisation ('*') counts a commit once, at its first production deployment of any
    -- service (a commit of two services in a monorepo is a change of each).
    SELECT service, grain, period_start,
        count(*) AS changes, median(lead_time_s) AS lead_time_median_s
    FROM (
        SELECT service, grain, period_start, lead_time_s FROM changes
        UNION ALL
        SELECT '*', grain, period_start, lead_time_s FROM changes WHERE organisation_first
    )
    GROUP BY service, grain, period_start
), incident_figures AS (
    SELECT coalesce(service, '*') AS service, grain, period_start,
        count(*) AS incidents, median(restore_s) AS restore_median_s
    FROM incidents
    GROUP BY GROUPING SETS ((service, grain, period_start), (grain, period_start))
)
SELECT service, grain, period_start,
    coalesce(d.deployments, 0) AS deployments,
    coalesce(c.changes, 0) AS changes,
    c.lead_time_median_s,
    coalesce(d.failed_deployments, 0) AS failed_deployments,
    d.failed_deployments / nullif(d.deployments, 0) AS change_failure_rate,
    coalesce(i.incidents, 0) AS incidents,
    i.restore_median_s,
    d.recovery_median_s,
    coalesce(d.rework_deployments, 0) AS rework_deployments,
    d.rework_deployments / nullif(d.deployments, 0) AS rework_rate
FROM deployment_figures d
FULL OUTER JOIN change_figures c USING (service, grain, period_start)
FULL OUTER JOIN incident_figures i USING (service, grain, period_start)
ORDER BY service, grain, period_start
