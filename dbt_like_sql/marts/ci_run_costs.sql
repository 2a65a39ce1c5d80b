-- description: One CI run with the price of its jobs (the sum of marts.ci_job_costs over the run's priced jobs) and the commit it built.
-- materialization: by_key
-- unique_key: run_key
-- key core.pipeline_runs: run_key
-- key marts.ci_job_costs: run_key
SELECT r.run_key, r.repo, r.workflow, r.sha, r.started_at,
    count(*) AS jobs,
    sum(c.billable_minutes) AS billable_minutes,
    sum(c.cost_usd) AS cost_usd
FROM core.pipeline_runs r
JOIN marts.ci_job_costs c USING (run_key)
GROUP BY r.run_key, r.repo, r.workflow, r.sha, r.started_at
