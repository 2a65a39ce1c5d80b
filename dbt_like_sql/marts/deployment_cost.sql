-- description: One production deployment with the CI cost of every run whose sha is among its changes or is its own sha.
WITH shipped AS (
    SELECT deployment_key, repo, sha FROM marts.deployment_changes
    UNION
    SELECT deployment_key, repo, sha FROM marts.production_deployments
), run_costs AS (
    SELECT r.repo, r.sha, sum(c.cost_usd) AS cost_usd, count(DISTINCT r.run_key) AS runs
    FROM core.pipeline_runs r
    JOIN marts.ci_job_costs c USING (run_key)
    GROUP BY r.repo, r.sha
)
SELECT d.deployment_key, d.service, d.repo, d.deployed_at,
    coalesce(sum(rc.runs), 0) AS ci_runs,
    coalesce(sum(rc.cost_usd), 0) AS ci_cost_usd
FROM marts.production_deployments d
LEFT JOIN shipped s USING (deployment_key)
LEFT JOIN run_costs rc ON rc.repo = s.repo AND rc.sha = s.sha
GROUP BY d.deployment_key, d.service, d.repo, d.deployed_at
