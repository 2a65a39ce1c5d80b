-- description: One commit in one production deployment: the change set of CONTRACTS.md §5 (commits pushed to the deployed branch after the push that brought the previous production deployment's sha, up to the push that brought this one's; each commit counted once; rollbacks carry none) with its lead time.
WITH production AS (
    SELECT deployment_key, service, repo, sha, ref, deployed_at, is_rollback,
        lag(sha) OVER (PARTITION BY service, repo ORDER BY deployed_at, deployment_key)
            AS previous_sha
    FROM core.deployments
    WHERE is_production AND status = 'success'
), located AS (
    -- The push that brought the deployed sha: on the deployed ref when it is a branch that
    -- received it, else on the first branch that did.
    SELECT p.*, c.branch, c.push_seq AS upto_seq
    FROM production p
    JOIN core.commits c ON c.repo = p.repo AND c.sha = p.sha
    WHERE NOT p.is_rollback
    QUALIFY row_number() OVER (
        PARTITION BY p.deployment_key ORDER BY (c.branch = p.ref) DESC, c.pushed_at, c.branch) = 1
), bounded AS (
    SELECT l.*, coalesce(prev.push_seq, 0) AS after_seq
    FROM located l
    LEFT JOIN core.commits prev
        ON prev.repo = l.repo AND prev.branch = l.branch AND prev.sha = l.previous_sha
), candidates AS (
    SELECT b.deployment_key, b.service, b.repo, b.branch, b.sha AS deployed_sha, b.deployed_at,
        c.sha, c.committed_at, c.pushed_at, c.push_seq
    FROM bounded b
    JOIN core.commits c
        ON c.repo = b.repo AND c.branch = b.branch
        AND c.push_seq > b.after_seq AND c.push_seq <= b.upto_seq
)
SELECT deployment_key, service, repo, branch, deployed_sha, sha, committed_at, pushed_at,
    deployed_at, epoch(deployed_at) - epoch(committed_at) AS lead_time_s
FROM candidates
-- A commit counts in the first production deployment that includes it, and never again.
QUALIFY row_number() OVER (PARTITION BY repo, sha ORDER BY deployed_at, deployment_key) = 1
