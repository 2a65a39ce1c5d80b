-- description: One CI job with its price: billable minutes times the per-minute rate of the first configured runner-label pattern it matches (a self-hosted runner no pattern prices costs nothing). Prices are exact decimals (USD to the millionth), so totals do not depend on summation order. day is the day of its start in the reporting time zone.
-- materialization: by_key
-- unique_key: job_key
-- key core.pipeline_jobs: job_key
WITH rates AS (
    SELECT j.job_key,
        arg_min(r.usd_per_minute, r.priority) AS matched_rate
    FROM core.pipeline_jobs j
    JOIN config.runner_rates r ON j.runner_label GLOB r.pattern
    GROUP BY j.job_key
), priced AS (
    SELECT j.job_key, j.run_key, j.repo, j.workflow, j.job_name, j.runner_label, j.self_hosted,
        j.conclusion, j.started_at,
        dcicd_local_day(j.started_at, (SELECT time_zone FROM config.reporting)) AS day, j.billable_minutes,
        coalesce(r.matched_rate, CASE WHEN j.self_hosted THEN 0 ELSE s.default_usd_per_minute END)
            ::DECIMAL(12, 6) AS usd_per_minute
    FROM core.pipeline_jobs j
    CROSS JOIN config.settings s
    LEFT JOIN rates r USING (job_key)
    WHERE j.started_at IS NOT NULL
)
SELECT *, (billable_minutes * usd_per_minute)::DECIMAL(18, 6) AS cost_usd FROM priced
