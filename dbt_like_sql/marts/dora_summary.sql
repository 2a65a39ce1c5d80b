-- description: DORA metrics per service (and '*') over the 7, 30 and 90 days ending at as_of (the UTC date of the latest event), with the DORA 2023 tier of each metric and overall (the lowest tier among the metrics that have data).
WITH as_of AS (
    SELECT max(received_at)::DATE AS as_of FROM raw.events
), windows AS (
    SELECT window_days, as_of, as_of - (window_days - 1)::INTEGER AS window_start
    FROM as_of, (SELECT unnest([7, 30, 90]) AS window_days)
), services AS (
    SELECT service FROM marts.production_deployments
    UNION SELECT service FROM core.incidents
    UNION SELECT service FROM config.services
), scopes AS (
    SELECT s.service, w.* FROM services s, windows w
    UNION ALL
    SELECT '*', w.* FROM windows w
), deployments AS (
    SELECT sc.service, sc.window_days,
        count(d.deployment_key) AS deployments,
        count(DISTINCT d.deployed_on) AS deploy_days,
        count(d.deployment_key) FILTER (WHERE d.is_failed) AS failed_deployments,
        median(d.recovery_s) FILTER (WHERE d.is_failed) AS recovery_median_s
    FROM scopes sc
    LEFT JOIN marts.production_deployments d
        ON (sc.service = '*' OR d.service = sc.service)
        AND d.deployed_on BETWEEN sc.window_start AND sc.as_of
    GROUP BY sc.service, sc.window_days
), changes AS (
    SELECT sc.service, sc.window_days, median(c.lead_time_s) AS lead_time_median_s
    FROM scopes sc
    JOIN marts.deployment_changes c
        ON (sc.service = '*' OR c.service = sc.service)
        AND c.deployed_at::DATE BETWEEN sc.window_start AND sc.as_of
    GROUP BY sc.service, sc.window_days
), incidents AS (
    SELECT sc.service, sc.window_days,
        count(*) AS incidents,
        median(epoch(i.resolved_at) - epoch(i.opened_at)) AS restore_median_s
    FROM scopes sc
    JOIN core.incidents i
        ON (sc.service = '*' OR i.service = sc.service)
        AND i.opened_at::DATE BETWEEN sc.window_start AND sc.as_of
    GROUP BY sc.service, sc.window_days
), figures AS (
    SELECT sc.service, sc.window_days, sc.as_of,
        d.deployments,
        d.deployments / sc.window_days AS deployments_per_day,
        d.deploy_days * 7 / sc.window_days AS deploy_days_per_week,
        c.lead_time_median_s,
        d.failed_deployments,
        d.failed_deployments / nullif(d.deployments, 0) AS change_failure_rate,
        coalesce(i.incidents, 0) AS incidents,
        i.restore_median_s,
        d.recovery_median_s
    FROM scopes sc
    JOIN deployments d USING (service, window_days)
    LEFT JOIN changes c USING (service, window_days)
    LEFT JOIN incidents i USING (service, window_days)
), tiered AS (
    -- DORA State of DevOps 2023 bands; deployment frequency counts deploy days, so ten
    -- deploys on one Monday do not make a daily deployer.
    SELECT *,
        CASE WHEN deploy_days_per_week >= 5 THEN 'elite'
            WHEN deploy_days_per_week >= 1 THEN 'high'
            WHEN deploy_days_per_week >= 7 / 30 THEN 'medium'
            ELSE 'low' END AS deployment_frequency_tier,
        CASE WHEN lead_time_median_s IS NULL THEN NULL
            WHEN lead_time_median_s < 86400 THEN 'elite'
            WHEN lead_time_median_s < 7 * 86400 THEN 'high'
            WHEN lead_time_median_s < 30 * 86400 THEN 'medium'
            ELSE 'low' END AS lead_time_tier,
        CASE WHEN change_failure_rate IS NULL THEN NULL
            WHEN change_failure_rate <= 0.05 THEN 'elite'
            WHEN change_failure_rate <= 0.10 THEN 'high'
            WHEN change_failure_rate <= 0.15 THEN 'medium'
            ELSE 'low' END AS change_failure_tier,
        CASE WHEN restore_median_s IS NULL THEN NULL
            WHEN restore_median_s < 3600 THEN 'elite'
            WHEN restore_median_s < 86400 THEN 'high'
            WHEN restore_median_s < 7 * 86400 THEN 'medium'
            ELSE 'low' END AS restore_tier
    FROM figures
)
SELECT *,
    ['low', 'medium', 'high', 'elite'][list_min(list_filter(list_transform(
        [deployment_frequency_tier, lead_time_tier, change_failure_tier, restore_tier],
        lambda t: list_position(['low', 'medium', 'high', 'elite'], t)),
        lambda r: r IS NOT NULL))] AS overall_tier
FROM tiered
ORDER BY service = '*' DESC, service, window_days
