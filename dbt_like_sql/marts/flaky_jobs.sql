-- description: Flakiness per CI job: a job that failed and then passed on the same sha (a re-run, or another run of the same commit) counts as a flake; flake_rate is flakes per completed execution.
SELECT repo, workflow, job_name,
    sum(executions)::BIGINT AS executions,
    sum(failures)::BIGINT AS failures,
    sum(flakes)::BIGINT AS flakes,
    sum(flakes) / sum(executions) AS flake_rate,
    max(last_flake_at) AS last_flake_at
FROM marts.job_outcomes_by_sha
GROUP BY repo, workflow, job_name
ORDER BY flake_rate DESC, flakes DESC
