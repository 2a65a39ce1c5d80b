-- description: One production deployment with the CI cost of every run whose sha is among its changes (or is the commit a pull request's merge put on the branch for some of them) or is its own sha.
WITH shipped AS (
    SELECT deployment_key, repo, sha FROM marts.deployment_changes
    UNION
    -- the commit a pull request's merge put on the branch, which its commits stand for
    SELECT deployment_key, repo, via_sha FROM marts.deployment_changes WHERE via_sha IS NOT NULL
    UNION
    SELECT deployment_key, repo, sha FROM marts.production_deployments
), sha_costs AS (
    SELECT repo, sha, sum(cost_usd) AS cost_usd, count(*) AS runs
    FROM marts.ci_run_costs
    GROUP BY repo, sha
)
SELECT d.deployment_key, d.service, d.repo, d.deployed_at,
    coalesce(sum(sc.runs), 0) AS ci_runs,
    coalesce(sum(sc.cost_usd), 0) AS ci_cost_usd
FROM marts.production_deployments d
LEFT JOIN shipped s USING (deployment_key)
LEFT JOIN sha_costs sc ON sc.repo = s.repo AND sc.sha = s.sha
GROUP BY d.deployment_key, d.service, d.repo, d.deployed_at
