-- description: The pull-request cycle per service (and '*' for the organisation) per day, ISO week and calendar month of the merge in the reporting time zone: pull_requests merged into the default branch, and the continuous median and 75th percentile of each phase of marts.pull_request_cycle over those that have it (NULL when none has); periods with no merge have no row.
WITH grains AS (
    SELECT unnest(['day', 'week', 'month']) AS grain
), cycles AS (
    SELECT g.grain, dcicd_period_start(g.grain, c.merged_at, (SELECT time_zone FROM config.reporting))
        AS period_start, c.*
    FROM marts.pull_request_cycle c, grains g
)
SELECT coalesce(service, '*') AS service, grain, period_start,
    count(*) AS pull_requests,
    count(deployed_at) AS deployed_pull_requests,
    median(coding_s) AS coding_median_s, quantile_cont(coding_s, 0.75) AS coding_p75_s,
    median(pickup_s) AS pickup_median_s, quantile_cont(pickup_s, 0.75) AS pickup_p75_s,
    median(review_s) AS review_median_s, quantile_cont(review_s, 0.75) AS review_p75_s,
    median(deploy_s) AS deploy_median_s, quantile_cont(deploy_s, 0.75) AS deploy_p75_s,
    median(cycle_s) AS cycle_median_s, quantile_cont(cycle_s, 0.75) AS cycle_p75_s
FROM cycles
GROUP BY GROUPING SETS ((service, grain, period_start), (grain, period_start))
ORDER BY service, grain, period_start
