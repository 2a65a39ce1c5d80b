-- description: One commit pushed to a branch, at its first push; push_seq numbers the branch's commits in push order, which deployment change sets follow.
WITH pushes AS (
    SELECT delivery_id, received_at, source,
        json_transform(payload, '{
            "ref": "VARCHAR", "after": "VARCHAR", "deleted": "BOOLEAN",
            "repository": {"full_name": "VARCHAR", "pushed_at": "VARCHAR"},
            "project": {"path_with_namespace": "VARCHAR"},
            "commits": [{"id": "VARCHAR", "timestamp": "VARCHAR",
                "author": {"name": "VARCHAR", "email": "VARCHAR"}}]}') AS p
    FROM raw.events
    WHERE source IN ('github', 'gitlab') AND event_type = 'push'
), branch_pushes AS (
    SELECT delivery_id, source,
        CASE source WHEN 'github' THEN p.repository.full_name
            ELSE p.project.path_with_namespace END AS repo,
        substr(p.ref, length('refs/heads/') + 1) AS branch,
        coalesce(dcicd_ts(p.repository.pushed_at), received_at) AS pushed_at,
        p.commits AS commits
    FROM pushes
    WHERE starts_with(p.ref, 'refs/heads/') AND NOT coalesce(p.deleted, false)
      AND p.after <> '0000000000000000000000000000000000000000'
), pushed_commits AS (
    SELECT delivery_id AS push_id, source, repo, branch, pushed_at,
        unnest(commits) AS c, generate_subscripts(commits, 1) AS position
    FROM branch_pushes
), first_pushes AS (
    SELECT repo, branch, c.id AS sha, dcicd_ts(c.timestamp) AS committed_at, pushed_at,
        push_id, position, source, c.author.name AS author_name, c.author.email AS author_email
    FROM pushed_commits
    QUALIFY row_number() OVER (
        PARTITION BY repo, branch, c.id ORDER BY pushed_at, push_id, position) = 1
)
SELECT *,
    -- The push order on the branch: change sets are ranges of it.
    row_number() OVER (PARTITION BY repo, branch ORDER BY pushed_at, push_id, position) AS push_seq
FROM first_pushes
