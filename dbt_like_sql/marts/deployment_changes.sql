-- description: One commit in one production deployment: the change set of CONTRACTS.md §5 with its lead time. Where the commit graph (core.commit_graph, from the history import) knows the deployed sha and the previous production deployment's, the commits reachable from this sha and from no earlier deployment's (git log --no-merges previous..this: a merge commit stands for the commits it brings), found_by 'commit_graph'; the first production deployment of a service counts those made (committer date) or pushed since the platform's history of the repository begins (its first run, deployment or push). Else the push rule (found_by 'pushes'): commits pushed to the deployed branch after the push that brought the previous production deployment's sha, up to the push that brought this one's, and still on the branch then (a forced push discards those it does not list). Then a commit a merged pull request's merge produced (its merge commit, squash commit or rebased copies; core.pull_requests) stands for that pull request's own commits, with their own commit times: via_pr_key and via_sha name the pull request and the deployed commit it came through (found_by stays how that commit was found; both NULL for a commit found itself). Each commit counts in the first production deployment of the service that includes it; rollbacks carry none. A service configured with paths counts only the commits that touched one of them (core.commit_services), judged before the pull-request step (a squash commit's files decide whose its pull request's commits are); organisation_first marks the row the organisation ('*') counts a commit by, its first production deployment of any service.
WITH RECURSIVE production AS (
    SELECT deployment_key, service, repo, sha, ref, deployed_at, is_rollback,
        lag(sha) OVER w AS previous_sha,
        lag(deployed_at) OVER w AS previous_deployed_at,
        lag(deployment_key) OVER w IS NULL AS is_first
    FROM core.deployments
    WHERE is_production AND status = 'success'
    WINDOW w AS (PARTITION BY service, repo ORDER BY deployed_at, deployment_key)
), graph AS (
    SELECT repo, sha, parent_shas, committed_at, committer_date FROM core.commit_graph
), seeds AS (
    -- Deployments of a sha the graph knows, ranked per service and repository in deployment
    -- order (services sharing a repository each have their own change sets). Every
    -- one walks (its ancestors are in production from then on); the graph gives the change
    -- set of those whose previous production deployment's sha it knows too (or that have none).
    SELECT p.*,
        row_number() OVER (PARTITION BY p.service, p.repo ORDER BY p.deployed_at, p.deployment_key)
            AS rank,
        p.is_first OR previous_known.sha IS NOT NULL AS graph_counts
    FROM production p
    JOIN graph g ON g.repo = p.repo AND g.sha = p.sha
    LEFT JOIN graph previous_known ON previous_known.repo = p.repo AND previous_known.sha = p.previous_sha
    WHERE NOT p.is_rollback
), earliest_seed AS (
    SELECT service, repo, sha, min(rank) AS rank FROM seeds GROUP BY service, repo, sha
), edges AS (
    SELECT repo, sha, unnest(parent_shas) AS parent_sha FROM graph
), walk(service, repo, sha, rank) AS (
    -- Each deployment walks the parents from its sha and stops at an earlier deployment's sha
    -- (whose ancestors that one's walk reaches): a commit's first deployment is the least rank
    -- that reaches it, and each walk covers only what is new since the ones before it.
    SELECT service, repo, sha, rank FROM seeds
    UNION
    SELECT w.service, e.repo, e.parent_sha, w.rank
    FROM walk w
    JOIN edges e ON e.repo = w.repo AND e.sha = w.sha
    LEFT JOIN earliest_seed s ON s.service = w.service AND s.repo = w.repo AND s.sha = w.sha
    WHERE coalesce(s.rank >= w.rank, true)
), first_reached AS (
    SELECT service, repo, sha, min(rank) AS rank FROM walk GROUP BY service, repo, sha
), known_since AS (
    -- When the platform's history of a repository begins (its first run, deployment or push,
    -- delivered or imported): a service's first production deployment counts the commits made
    -- since, or pushed since, as the push rule counts those pushed since; not the years of
    -- history behind them.
    SELECT repo, min(since) AS known_since
    FROM (
        SELECT repo, queued_at AS since FROM core.pipeline_runs
        UNION ALL SELECT repo, created_at FROM core.deployments
        UNION ALL SELECT repo, pushed_at FROM core.commits
    )
    GROUP BY repo
), first_pushes AS (
    SELECT repo, sha, min(pushed_at) AS pushed_at FROM core.commits GROUP BY repo, sha
), by_graph AS (
    SELECT s.deployment_key, s.service, s.repo, s.ref AS branch, s.sha AS deployed_sha,
        g.sha, g.committed_at, f.pushed_at, s.deployed_at, 'commit_graph' AS found_by
    FROM first_reached r
    JOIN seeds s ON s.service = r.service AND s.repo = r.repo AND s.rank = r.rank
    JOIN graph g ON g.repo = r.repo AND g.sha = r.sha
    LEFT JOIN known_since k ON k.repo = s.repo
    LEFT JOIN first_pushes f ON f.repo = g.repo AND f.sha = g.sha
    WHERE s.graph_counts
        AND len(g.parent_shas) < 2
        AND (NOT s.is_first OR f.pushed_at IS NOT NULL
            OR coalesce(g.committer_date >= k.known_since, true))
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
        AND p.deployment_key NOT IN (SELECT deployment_key FROM seeds WHERE graph_counts)
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
), by_pushes AS (
    -- Pushed in the range and still held by the branch at its end: a forced push in between
    -- that did not list a commit discarded it.
    SELECT b.deployment_key, b.service, b.repo, b.branch, b.sha AS deployed_sha, c.sha,
        c.committed_at, c.first_pushed_at AS pushed_at, b.deployed_at, 'pushes' AS found_by
    FROM bounded b
    JOIN spans c
        ON c.repo = b.repo AND c.branch = b.branch
        AND c.from_seq > b.after_seq AND c.from_seq <= b.upto_seq
        AND coalesce(c.until_seq > b.upto_seq, true)
), changes AS (
    SELECT * FROM (SELECT * FROM by_graph UNION ALL SELECT * FROM by_pushes)
    -- A commit counts in the first production deployment of the service that includes it, and
    -- never again.
    QUALIFY row_number() OVER (
        PARTITION BY service, repo, sha ORDER BY deployed_at, deployment_key) = 1
), found AS (
    -- Monorepos: a service configured with paths in a repository counts only the commits that
    -- touched one of them (core.commit_services); the deployment's other commits are not its
    -- changes. A commit touching two services' paths is a change of each one's first
    -- production deployment that includes it.
    SELECT c.*
    FROM changes c
    WHERE NOT EXISTS (
            SELECT 1 FROM config.service_paths sp
            WHERE sp.service = c.service AND sp.repo = c.repo AND len(sp.paths) > 0)
        OR EXISTS (
            SELECT 1 FROM core.commit_services cs
            WHERE cs.service = c.service AND cs.repo = c.repo AND cs.sha = lower(c.sha))
), merged_pull_requests AS (
    SELECT pr_key, repo, merge_commit_sha, squash_commit_sha, own_commits,
        list_transform(own_commits, lambda c: c.sha) AS own_shas,
        list_transform(own_commits, lambda c: c.committed_at) AS own_times
    FROM core.pull_requests
    WHERE merged_at IS NOT NULL AND len(own_commits) > 0
), merged_as AS (
    -- The commit a merged pull request's merge put on the deployed branch: its merge commit or
    -- squash commit (for a rebase merge, the last rebased copy).
    SELECT f.deployment_key, f.repo, f.sha AS via_sha, m.pr_key
    FROM found f
    JOIN merged_pull_requests m
        ON m.repo = f.repo AND f.sha IN (m.merge_commit_sha, m.squash_commit_sha)
    WHERE NOT list_contains(m.own_shas, f.sha)
), copies AS (
    -- Its other rebased copies: in the same deployment, commits not its own that have one of
    -- its own commits' author times (a rebase keeps them).
    SELECT f.deployment_key, f.repo, f.sha AS via_sha, a.pr_key, f.committed_at
    FROM merged_as a
    JOIN merged_pull_requests m USING (pr_key)
    JOIN found f ON f.deployment_key = a.deployment_key AND f.repo = a.repo
    WHERE list_contains(m.own_times, f.committed_at) AND NOT list_contains(m.own_shas, f.sha)
        AND NOT list_contains([m.merge_commit_sha, m.squash_commit_sha], f.sha)
), own AS (
    SELECT pr_key, unnest(own_commits, recursive := true) FROM merged_pull_requests
), stands_for AS (
    -- A rebased copy stands for the own commits of its author time; the merge or squash
    -- commit for the rest (all of them, but for a rebase merge).
    SELECT c.deployment_key, c.repo, c.via_sha, c.pr_key, o.sha, o.committed_at
    FROM copies c
    JOIN own o ON o.pr_key = c.pr_key AND o.committed_at = c.committed_at
    UNION ALL
    SELECT a.deployment_key, a.repo, a.via_sha, a.pr_key, o.sha, o.committed_at
    FROM merged_as a
    JOIN own o USING (pr_key)
    ANTI JOIN copies c ON c.deployment_key = a.deployment_key AND c.pr_key = a.pr_key
        AND c.committed_at = o.committed_at
), expanded AS (
    -- found_by stays how the deployed commit was found; via_sha is that commit.
    SELECT f.*, NULL::VARCHAR AS via_pr_key, NULL::VARCHAR AS via_sha
    FROM found f
    ANTI JOIN (SELECT deployment_key, via_sha FROM merged_as
            UNION SELECT deployment_key, via_sha FROM copies) p
        ON p.deployment_key = f.deployment_key AND p.via_sha = f.sha
    UNION ALL
    SELECT f.deployment_key, f.service, f.repo, f.branch, f.deployed_sha, s.sha,
        s.committed_at, fp.pushed_at, f.deployed_at, f.found_by, s.pr_key, s.via_sha
    FROM stands_for s
    JOIN found f ON f.deployment_key = s.deployment_key AND f.sha = s.via_sha
    LEFT JOIN first_pushes fp ON fp.repo = s.repo AND fp.sha = s.sha
), deduplicated AS (
    -- Each commit once per service, in its first deployment; a commit found on the branch
    -- itself before one that a merge stands for.
    SELECT * FROM expanded
    QUALIFY row_number() OVER (
        PARTITION BY service, repo, sha
        ORDER BY deployed_at, deployment_key, via_sha NULLS FIRST, via_pr_key) = 1
)
SELECT deployment_key, service, repo, branch, deployed_sha, sha, committed_at, pushed_at,
    deployed_at, epoch(deployed_at) - epoch(committed_at) AS lead_time_s, found_by, via_pr_key,
    via_sha,
    -- The organisation ('*') counts a commit once: in the first production deployment of any
    -- service that includes it.
    row_number() OVER (PARTITION BY repo, sha ORDER BY deployed_at, deployment_key) = 1
        AS organisation_first
FROM deduplicated
