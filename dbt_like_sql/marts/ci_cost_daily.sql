-- description: CI cost per repository, workflow, runner label and day (of the job's start, in the reporting time zone): billable minutes (each job's duration rounded up to a whole minute, at least one) and their price.
-- materialization: by_key
-- unique_key: repo, workflow, runner_label, day
-- key marts.ci_job_costs: repo, workflow, runner_label, day
SELECT repo, workflow, runner_label, day,
    count(*) AS jobs,
    sum(billable_minutes) AS billable_minutes,
    sum(cost_usd) AS cost_usd
FROM marts.ci_job_costs
GROUP BY ALL
ORDER BY day, repo, workflow, runner_label
