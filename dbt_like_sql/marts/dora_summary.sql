-- description: DORA metrics per service (and '*') over the 7, 30 and 90 days ending at as_of (the date of the latest event in the reporting time zone, config.reporting; each window is whole days of that zone), with the DORA 2023 tier of each metric and overall (the lowest tier among the metrics that have data), and the rework rate (DORA 2024, marts.deployment_rework; no tier: DORA publishes no bands for it).
WITH as_of AS (
    SELECT dcicd_local_day(max(received_at), (SELECT time_zone FROM config.reporting)) AS as_of
    FROM raw.events
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
        median(d.recovery_s) FILTER (WHERE d.is_failed) AS recovery_median_s,
        count(d.deployment_key) FILTER (WHERE r.is_rework) AS rework_deployments
    FROM scopes sc
    LEFT JOIN marts.production_deployments d
        ON (sc.service = '*' OR d.service = sc.service)
        AND d.deployed_on BETWEEN sc.window_start AND sc.as_of
    LEFT JOIN marts.deployment_rework r ON r.deployment_key = d.deployment_key
    GROUP BY sc.service, sc.window_days
), changes AS (
    SELECT sc.service, sc.window_days, median(c.lead_time_s) AS lead_time_median_s
    FROM scopes sc
    JOIN marts.deployment_changes c
        -- The organisation counts a commit once (a monorepo commit may change two services).
        ON (sc.service = '*' AND c.organisation_first OR c.service = sc.service)
        AND dcicd_local_day(c.deployed_at, (SELECT time_zone FROM config.reporting))
            BETWEEN sc.window_start AND sc.as_of
    GROUP BY sc.service, sc.window_days
), incidents AS (
    SELECT sc.service, sc.window_days,
        count(*) AS incidents,
        median(epoch(i.resolved_at) - epoch(i.opened_at)) AS restore_median_s
    FROM scopes sc
    JOIN core.incidents i
        ON (sc.service = '*' OR i.service = sc.service)
        AND dcicd_local_day(i.opened_at, (SELECT time_zone FROM config.reporting))
            BETWEEN sc.window_start AND sc.as_of
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
        d.recovery_median_s,
        d.rework_deployments,
        d.rework_deployments / nullif(d.deployments, 0) AS rework_rate
    FROM scopes sc
    JOIN deployments d USING (service, window_days)
    LEFT JOIN changes c USING (service, window_days)
    LEFT JOIN incidents i USING (service, window_days)
), tiered AS (
    -- DORA's tier bands, defined once in macros/dora_tiers.sql.
    SELECT *,
        dcicd_dora_tier('deploy_days_per_week', deploy_days_per_week)
            AS deployment_frequency_tier,
        dcicd_dora_tier('lead_time_median_s', lead_time_median_s) AS lead_time_tier,
        dcicd_dora_tier('change_failure_rate', change_failure_rate) AS change_failure_tier,
        dcicd_dora_tier('restore_median_s', restore_median_s) AS restore_tier
    FROM figures
)
SELECT *,
    ['low', 'medium', 'high', 'elite'][list_min(list_filter(list_transform(
        [deployment_frequency_tier, lead_time_tier, change_failure_tier, restore_tier],
        lambda t: list_position(['low', 'medium', 'high', 'elite'], t)),
        lambda r: r IS NOT NULL))] AS overall_tier
FROM tiered
ORDER BY service = '*' DESC, service, window_days
