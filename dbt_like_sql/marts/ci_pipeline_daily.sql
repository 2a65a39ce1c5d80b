-- description: CI runs per repository, workflow and day (of the run's start, in the reporting time zone): how many, how many passed and failed, the success rate among those that passed or failed, duration P50/P95 over the runs that ran (not skipped, not waiting for approval) and the P50 time jobs waited for a runner.
-- materialization: by_key
-- unique_key: repo, workflow, day
-- key core.pipeline_runs: repo, workflow, dcicd_local_day(started_at, (SELECT time_zone FROM config.reporting))
-- key core.pipeline_jobs: through core.pipeline_runs on run_key
WITH runs AS (
    SELECT repo, workflow, dcicd_local_day(started_at, (SELECT time_zone FROM config.reporting)) AS day,
        run_key, conclusion, duration_s, ran
    FROM core.pipeline_runs
    WHERE status = 'completed' AND started_at IS NOT NULL
), queues AS (
    SELECT r.repo, r.workflow, r.day, quantile_cont(j.queue_s, 0.5) AS queue_p50_s
    FROM runs r
    JOIN core.pipeline_jobs j USING (run_key)
    WHERE j.queue_s IS NOT NULL AND j.ran
    GROUP BY ALL
)
SELECT repo, workflow, day,
    count(*) AS runs,
    count(*) FILTER (WHERE conclusion = 'success') AS succeeded,
    count(*) FILTER (WHERE conclusion IN ('failure', 'timed_out')) AS failed,
    succeeded / nullif(succeeded + failed, 0) AS success_rate,
    quantile_cont(duration_s, 0.5) FILTER (WHERE ran) AS duration_p50_s,
    quantile_cont(duration_s, 0.95) FILTER (WHERE ran) AS duration_p95_s,
    q.queue_p50_s
FROM runs
LEFT JOIN queues q USING (repo, workflow, day)
GROUP BY repo, workflow, day, q.queue_p50_s
ORDER BY day, repo, workflow
