-- description: Flakiness per CI job: a job that failed and then passed on the same sha (a re-run, or another run of the same commit) counts as a flake; flake_rate is flakes per completed execution.
WITH executions AS (
    SELECT repo, workflow, job_name, sha, conclusion, finished_at,
        bool_or(conclusion = 'success') OVER (
            PARTITION BY repo, workflow, job_name, sha ORDER BY finished_at
            ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS passed_later
    FROM core.pipeline_jobs
    WHERE conclusion IN ('success', 'failure', 'timed_out') AND sha IS NOT NULL
)
SELECT repo, workflow, job_name,
    count(*) AS executions,
    count(*) FILTER (WHERE conclusion <> 'success') AS failures,
    count(*) FILTER (WHERE conclusion <> 'success' AND passed_later) AS flakes,
    flakes / count(*) AS flake_rate,
    max(finished_at) FILTER (WHERE conclusion <> 'success' AND passed_later) AS last_flake_at
FROM executions
GROUP BY repo, workflow, job_name
ORDER BY flake_rate DESC, flakes DESC
