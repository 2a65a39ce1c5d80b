-- description: The playbook's KPIs over the 30 days ending at as_of (days of the reporting time zone), per service (CI ones per repository) and for the organisation ('*'): target, actual and met / missed / no_data. Targets come from the configuration.
WITH settings AS (
    SELECT * FROM config.settings
), dora AS (
    SELECT * FROM marts.dora_summary WHERE window_days = 30
), window_bounds AS (
    SELECT any_value(as_of) AS as_of, any_value(as_of) - 29 AS window_start FROM dora
), ci_runs AS (
    SELECT r.repo, r.duration_s
    FROM core.pipeline_runs r, window_bounds w
    WHERE r.ran
        AND dcicd_local_day(r.started_at, (SELECT time_zone FROM config.reporting)) BETWEEN w.window_start AND w.as_of
), ci AS (
    SELECT coalesce(repo, '*') AS scope,
        quantile_cont(duration_s, 0.5) / 60 AS p50_minutes,
        quantile_cont(duration_s, 0.95) / 60 AS p95_minutes
    FROM ci_runs
    GROUP BY GROUPING SETS ((repo), ())
), deployment_costs AS (
    SELECT c.service, avg(c.ci_cost_usd) AS cost_per_deployment
    FROM marts.deployment_cost c, window_bounds w
    WHERE dcicd_local_day(c.deployed_at, (SELECT time_zone FROM config.reporting)) BETWEEN w.window_start AND w.as_of
    GROUP BY c.service
), kpis AS (
    SELECT 'lead_time_hours' AS kpi, service AS scope, s.kpi_lead_time_hours AS target,
        lead_time_median_s / 3600 AS actual, 'below' AS goal
    FROM dora, settings s
    UNION ALL
    SELECT 'deployments_per_day', service, s.kpi_deployments_per_day, deployments_per_day,
        'at_least'
    FROM dora, settings s
    UNION ALL
    SELECT 'change_failure_rate', service, s.kpi_change_failure_rate, change_failure_rate,
        'below'
    FROM dora, settings s
    UNION ALL
    SELECT 'time_to_restore_minutes', service, s.kpi_time_to_restore_minutes,
        restore_median_s / 60, 'below'
    FROM dora, settings s
    UNION ALL
    SELECT 'ci_duration_p50_minutes', scope, s.kpi_ci_duration_p50_minutes, p50_minutes,
        'at_most'
    FROM ci, settings s
    UNION ALL
    SELECT 'ci_duration_p95_minutes', scope, s.kpi_ci_duration_p95_minutes, p95_minutes,
        'at_most'
    FROM ci, settings s
    UNION ALL
    -- Only where a budget is configured: within +-tolerance of it.
    SELECT 'cost_per_deployment_usd', cs.service, cs.ci_budget_usd_per_deployment,
        dc.cost_per_deployment, 'within_tolerance'
    FROM config.services cs
    LEFT JOIN deployment_costs dc ON dc.service = cs.service
    WHERE cs.ci_budget_usd_per_deployment IS NOT NULL
)
SELECT k.kpi, k.scope, k.target, k.actual, k.goal,
    CASE
        WHEN k.actual IS NULL THEN 'no_data'
        WHEN k.goal = 'below' AND k.actual < k.target THEN 'met'
        WHEN k.goal = 'at_least' AND k.actual >= k.target THEN 'met'
        WHEN k.goal = 'at_most' AND k.actual <= k.target THEN 'met'
        WHEN k.goal = 'within_tolerance'
            AND abs(k.actual - k.target) <= s.kpi_cost_per_deployment_tolerance * k.target
            THEN 'met'
        ELSE 'missed'
    END AS status,
    w.window_start, w.as_of
FROM kpis k, settings s, window_bounds w
ORDER BY k.kpi, k.scope = '*' DESC, k.scope
