-- description: One production deployment with the CI cost of every run whose sha is among its changes (or is the commit a pull request's merge put on the branch for some of them) or is its own sha; in a repository whose services name paths, only the runs core.run_services maps to the deployment's service (or to no service) count.
WITH shipped AS (
    SELECT deployment_key, repo, sha FROM marts.deployment_changes
    UNION
    -- the commit a pull request's merge put on the branch, which its commits stand for
    SELECT deployment_key, repo, via_sha FROM marts.deployment_changes WHERE via_sha IS NOT NULL
    UNION
    SELECT deployment_key, repo, sha FROM marts.production_deployments
), run_costs AS (
    -- A run in a repository whose services name paths is the cost of the services it builds.
    SELECT c.repo, c.sha, rs.service, c.cost_usd
    FROM marts.ci_run_costs c
    LEFT JOIN core.run_services rs
        ON rs.run_key = c.run_key
        AND c.repo IN (SELECT repo FROM config.service_paths WHERE len(paths) > 0)
), sha_costs AS (
    SELECT repo, sha, service, sum(cost_usd) AS cost_usd, count(*) AS runs
    FROM run_costs
    GROUP BY repo, sha, service
)
SELECT d.deployment_key, d.service, d.repo, d.deployed_at,
    coalesce(sum(sc.runs), 0) AS ci_runs,
    coalesce(sum(sc.cost_usd), 0) AS ci_cost_usd
FROM marts.production_deployments d
LEFT JOIN shipped s USING (deployment_key)
LEFT JOIN sha_costs sc
    ON sc.repo = s.repo AND sc.sha = s.sha AND (sc.service IS NULL OR sc.service = d.service)
GROUP BY d.deployment_key, d.service, d.repo, d.deployed_at
