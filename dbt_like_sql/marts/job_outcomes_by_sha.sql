-- description: Completed executions of one CI job on one commit: how many, how many failed, and how many of those failures were followed by a pass of the same job on the same sha (a flake).
-- materialization: by_key
-- unique_key: repo, workflow, job_name, sha
-- key core.pipeline_jobs: repo, workflow, job_name, sha
WITH executions AS (
    SELECT repo, workflow, job_name, sha, conclusion, finished_at,
        bool_or(conclusion = 'success') OVER (
            PARTITION BY repo, workflow, job_name, sha ORDER BY finished_at
            ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS passed_later
    FROM core.pipeline_jobs
    WHERE conclusion IN ('success', 'failure', 'timed_out') AND sha IS NOT NULL
)
SELECT repo, workflow, job_name, sha,
    count(*) AS executions,
    count(*) FILTER (WHERE conclusion <> 'success') AS failures,
    count(*) FILTER (WHERE conclusion <> 'success' AND passed_later) AS flakes,
    max(finished_at) FILTER (WHERE conclusion <> 'success' AND passed_later) AS last_flake_at
FROM executions
GROUP BY repo, workflow, job_name, sha
