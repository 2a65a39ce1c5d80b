-- description: One pull request merged into its repository's default branch, with the production deployment that first shipped it and the phases of its cycle in seconds (CONTRACTS.md §5): coding_s (first commit to opened), pickup_s (opened to the first review by someone other than the author), review_s (that review to merged), deploy_s (merged to the first production deployment whose changes include its commits) and cycle_s (first commit to that deployment). A phase with a missing end or start (no commits known, never reviewed by another person, not yet deployed) is NULL. service is the shipping deployment's, else the repository's.
WITH merged AS (
    SELECT * FROM core.pull_requests
    WHERE merged_at IS NOT NULL AND base_branch = default_branch
), shipped AS (
    -- The deployments whose changes hold its commits: its own commits (found on the branch or
    -- through the commit its merge produced), or, when none are known, that commit itself.
    SELECT m.pr_key, c.deployment_key, c.service, c.deployed_at
    FROM (SELECT pr_key, repo, unnest(own_commits).sha AS sha FROM merged) m
    JOIN marts.deployment_changes c ON c.repo = m.repo AND c.sha = m.sha
    UNION ALL
    SELECT m.pr_key, c.deployment_key, c.service, c.deployed_at
    FROM merged m
    JOIN marts.deployment_changes c
        ON c.repo = m.repo AND c.sha IN (m.merge_commit_sha, m.squash_commit_sha)
), first_shipped AS (
    SELECT pr_key,
        arg_min(deployment_key, (deployed_at, deployment_key)) AS deployment_key,
        arg_min(service, (deployed_at, deployment_key)) AS service,
        min(deployed_at) AS deployed_at
    FROM shipped
    GROUP BY pr_key
)
SELECT m.pr_key, coalesce(s.service, r.service, m.repo) AS service, m.repo, m.number,
    m.title, m.author, s.deployment_key, m.first_commit_at, m.opened_at, m.first_review_at,
    m.approved_at, m.merged_at, s.deployed_at,
    epoch(m.opened_at) - epoch(m.first_commit_at) AS coding_s,
    epoch(m.first_review_at) - epoch(m.opened_at) AS pickup_s,
    epoch(m.merged_at) - epoch(m.first_review_at) AS review_s,
    epoch(s.deployed_at) - epoch(m.merged_at) AS deploy_s,
    epoch(s.deployed_at) - epoch(m.first_commit_at) AS cycle_s
FROM merged m
LEFT JOIN first_shipped s USING (pr_key)
LEFT JOIN config.service_repositories r ON r.repo = m.repo
