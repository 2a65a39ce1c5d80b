-- description: One commit in one production deployment: the change set of CONTRACTS.md §5 (commits pushed to the deployed branch after the push that brought the previous production deployment's sha, up to the push that brought this one's, and still on the branch then: a forced push discards those it does not list; each commit counted once; rollbacks carry none) with its lead time.
WITH production AS (
    SELECT deployment_key, service, repo, sha, ref, deployed_at, is_rollback,
        lag(sha) OVER (PARTITION BY service, repo ORDER BY deployed_at, deployment_key)
            AS previous_sha,
        lag(deployed_at) OVER (PARTITION BY service, repo ORDER BY deployed_at, deployment_key)
            AS previous_deployed_at
    FROM core.deployments
    WHERE is_production AND status = 'success'
), spans AS (
    -- Each span of push order from a push listing a commit to the next forced push that did not.
    SELECT repo, branch, sha, committed_at, pushed_at AS first_pushed_at, s.from_seq,
        s.pushed_at, s.until_seq
    FROM (SELECT *, unnest(pushed_spans) AS s FROM core.commits)
), located AS (
    -- The push that brought the deployed sha: on the deployed ref when it is a branch that
    -- received it, else on the first branch that did; the latest such push before the
    -- deployment (a commit a forced push discarded may be pushed again).
    SELECT p.*, c.branch, c.from_seq AS upto_seq
    FROM production p
    JOIN spans c ON c.repo = p.repo AND c.sha = p.sha
    WHERE NOT p.is_rollback
    QUALIFY row_number() OVER (
        PARTITION BY p.deployment_key
        ORDER BY (c.branch = p.ref) DESC, c.first_pushed_at, c.branch,
            c.pushed_at <= p.deployed_at DESC, c.from_seq DESC) = 1
), bounded AS (
    SELECT l.*, coalesce(prev.from_seq, 0) AS after_seq
    FROM located l
    LEFT JOIN spans prev
        ON prev.repo = l.repo AND prev.branch = l.branch AND prev.sha = l.previous_sha
    QUALIFY row_number() OVER (
        PARTITION BY l.deployment_key
        ORDER BY prev.pushed_at <= l.previous_deployed_at DESC, prev.from_seq DESC) = 1
), candidates AS (
    -- Pushed in the range and still held by the branch at its end: a forced push in between
    -- that did not list a commit discarded it.
    SELECT b.deployment_key, b.service, b.repo, b.branch, b.sha AS deployed_sha, b.deployed_at,
        c.sha, c.committed_at, c.first_pushed_at AS pushed_at
    FROM bounded b
    JOIN spans c
        ON c.repo = b.repo AND c.branch = b.branch
        AND c.from_seq > b.after_seq AND c.from_seq <= b.upto_seq
        AND coalesce(c.until_seq > b.upto_seq, true)
)
SELECT deployment_key, service, repo, branch, deployed_sha, sha, committed_at, pushed_at,
    deployed_at, epoch(deployed_at) - epoch(committed_at) AS lead_time_s
FROM candidates
-- A commit counts in the first production deployment that includes it, and never again.
QUALIFY row_number() OVER (PARTITION BY repo, sha ORDER BY deployed_at, deployment_key) = 1
