-- description: One CI job at its latest known state, with its billable minutes; a job's repository and workflow come from its run when its own events lack them (GitHub job events name no workflow in older payloads, GitLab job events never do).
-- materialization: by_key
-- unique_key: job_key
-- key core.pipeline_job_states: job_key
-- key core.pipeline_runs: through core.pipeline_job_states on run_key
SELECT
    j.job_key, j.run_key, coalesce(j.repo, r.repo) AS repo,
    coalesce(j.workflow, r.workflow) AS workflow, j.job_name, j.stage, j.sha, j.runner_label,
    j.runner_name, j.self_hosted, j.status, j.conclusion, j.queued_at, j.started_at,
    j.finished_at, j.duration_s, j.queue_s, j.attempt, j.ran, j.billable_minutes,
    j.last_received_at
FROM core.pipeline_job_states j
LEFT JOIN core.pipeline_runs r USING (run_key)
