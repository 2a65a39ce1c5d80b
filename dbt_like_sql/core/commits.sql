-- description: One commit pushed to a branch, at its first push; push_seq orders the branch's pushes and their commits, which deployment change sets follow; pushed_spans lists the spans of that order from a push listing the commit to the next forced push that does not (it may be pushed again), which a change set reads to leave out the commits a forced push discarded.
WITH pushes AS (
    SELECT delivery_id, received_at, source,
        json_transform(payload, '{
            "ref": "VARCHAR", "after": "VARCHAR", "deleted": "BOOLEAN", "forced": "BOOLEAN",
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
        coalesce(p.forced, false) AS forced,
        coalesce(p.commits, []) AS commits
    FROM pushes
    WHERE starts_with(p.ref, 'refs/heads/') AND NOT coalesce(p.deleted, false)
      AND p.after <> '0000000000000000000000000000000000000000'
), slots AS (
    -- Each listed commit takes a place in the branch's push order, and a forced push one more
    -- (position 0) before the commits it lists, where it ends the spans of those it does not.
    SELECT delivery_id AS push_id, source, repo, branch, pushed_at, forced,
        NULL::VARCHAR[] AS listed_shas, unnest(commits) AS c,
        generate_subscripts(commits, 1) AS position
    FROM branch_pushes
    UNION ALL BY NAME
    SELECT delivery_id AS push_id, source, repo, branch, pushed_at, forced,
        list_transform(commits, lambda x: x.id) AS listed_shas, NULL AS c, 0 AS position
    FROM branch_pushes
    WHERE forced
), ordered AS (
    SELECT *,
        row_number() OVER (PARTITION BY repo, branch ORDER BY pushed_at, push_id, position)
            AS seq
    FROM slots
), listed AS (
    SELECT repo, branch, c.id AS sha, seq, pushed_at, push_id, position, source, c
    FROM ordered
    WHERE c IS NOT NULL
), first_pushes AS (
    SELECT repo, branch, sha, dcicd_ts(c.timestamp) AS committed_at, pushed_at, push_id,
        position, source, c.author.name AS author_name, c.author.email AS author_email,
        seq AS push_seq
    FROM listed
    QUALIFY row_number() OVER (PARTITION BY repo, branch, sha ORDER BY seq) = 1
), discards AS (
    -- A forced push after a commit's first push that does not list it. Whether it discards the
    -- commit depends on the deployments (only commits pushed since the previous production
    -- deployment are discarded): deployment_changes decides, from these spans.
    SELECT f.repo, f.branch, c.sha, f.seq, false AS held, f.pushed_at
    FROM ordered f
    JOIN first_pushes c ON c.repo = f.repo AND c.branch = f.branch AND c.push_seq < f.seq
    WHERE f.forced AND f.position = 0
        AND NOT list_contains(f.listed_shas, c.sha)
), transitions AS (
    -- Listings and discards in push order; only the changes remain: a span starts or ends.
    SELECT repo, branch, sha, seq, held, pushed_at
    FROM (
        SELECT repo, branch, sha, seq, true AS held, pushed_at FROM listed
        UNION ALL
        SELECT * FROM discards
    )
    QUALIFY held IS DISTINCT FROM lag(held) OVER (PARTITION BY repo, branch, sha ORDER BY seq)
), spans AS (
    SELECT repo, branch, sha,
        list({'from_seq': seq, 'pushed_at': pushed_at, 'until_seq': until_seq} ORDER BY seq)
            AS pushed_spans
    FROM (
        SELECT *, lead(seq) OVER (PARTITION BY repo, branch, sha ORDER BY seq) AS until_seq
        FROM transitions
    )
    WHERE held
    GROUP BY repo, branch, sha
)
SELECT f.*, s.pushed_spans
FROM first_pushes f
JOIN spans s USING (repo, branch, sha)
