-- description: One pull request (GitHub) or merge request (GitLab) in its latest known state, from pull_request, pull_request_review, merge_request and merge-request note deliveries and the history import. pr_key is 'github:<repo>#<number>' or 'gitlab:<project>!<iid>'; closed_at is when it was closed or merged (NULL while open); merge_commit_sha (and GitLab's squash_commit_sha) only once merged. first_review_at is the first review submitted by someone other than the author (a comment counts; GitLab: an approval or a note), approved_at the first approval by someone else that still stands (a dismissed one does not). own_commits are its own commits with their author times: those the API lists for it (own_commits_from 'api'), else, from webhooks alone, the commits pushed to its head branch up to its head sha and still on it then, after the previous pull request from that branch, leaving out those the base branch had first ('pushes'); first_commit_at is the earliest of them.
WITH github_events AS (
    SELECT delivery_id, received_at, event_type, json_transform(payload, '{
        "pull_request": {"number": "BIGINT", "title": "VARCHAR", "state": "VARCHAR",
            "user": {"login": "VARCHAR"}, "created_at": "VARCHAR", "updated_at": "VARCHAR",
            "closed_at": "VARCHAR", "merged_at": "VARCHAR", "merge_commit_sha": "VARCHAR",
            "head": {"ref": "VARCHAR", "sha": "VARCHAR", "repo": {"full_name": "VARCHAR"}},
            "base": {"ref": "VARCHAR", "repo": {"default_branch": "VARCHAR"}},
            "additions": "BIGINT", "deletions": "BIGINT", "changed_files": "BIGINT"},
        "review": {"id": "VARCHAR", "state": "VARCHAR", "submitted_at": "VARCHAR",
            "user": {"login": "VARCHAR"}},
        "repository": {"full_name": "VARCHAR", "default_branch": "VARCHAR"}}') AS p
    FROM raw.events
    WHERE source = 'github' AND event_type IN ('pull_request', 'pull_request_review')
), github_states AS (
    SELECT 'github:' || p.repository.full_name || '#' || p.pull_request.number AS pr_key,
        'github' AS source, p.repository.full_name AS repo, p.pull_request.number AS number,
        p.pull_request.title AS title, p.pull_request.user.login AS author,
        p.pull_request.base.ref AS base_branch,
        coalesce(p.repository.default_branch, p.pull_request.base.repo.default_branch)
            AS default_branch,
        p.pull_request.head.ref AS head_branch, lower(p.pull_request.head.sha) AS head_sha,
        -- A fork's branch is pushed to another repository: no push of it is delivered here.
        coalesce(p.pull_request.head.repo.full_name = p.repository.full_name, true)
            AS head_in_repo,
        lower(p.pull_request.state) AS state,
        dcicd_ts(p.pull_request.created_at) AS opened_at,
        dcicd_ts(p.pull_request.merged_at) AS merged_at,
        dcicd_ts(p.pull_request.closed_at) AS closed_at,
        lower(p.pull_request.merge_commit_sha) AS merge_commit_sha,
        NULL::VARCHAR AS squash_commit_sha,
        p.pull_request.additions AS additions, p.pull_request.deletions AS deletions,
        p.pull_request.changed_files AS changed_files,
        dcicd_ts(p.pull_request.updated_at) AS updated_at, received_at, delivery_id
    FROM github_events
    WHERE event_type = 'pull_request' AND p.pull_request.number IS NOT NULL
), github_reviews AS (
    -- One row per review: when it was first submitted, and whether its latest state (a
    -- dismissal comes as a delivery of the same review) is an approval. A pending review is
    -- not submitted yet.
    SELECT 'github:' || any_value(p.repository.full_name) || '#' || any_value(p.pull_request.number)
            AS pr_key,
        any_value(p.review.user.login) AS reviewer,
        any_value(p.pull_request.user.login) AS pr_author,
        min(dcicd_ts(p.review.submitted_at))
            FILTER (WHERE lower(p.review.state) <> 'pending') AS first_at,
        CASE WHEN lower(arg_max(p.review.state, (received_at, delivery_id))) = 'approved'
            THEN min(dcicd_ts(p.review.submitted_at)) END AS approved_at
    FROM github_events
    WHERE event_type = 'pull_request_review' AND p.review.id IS NOT NULL
        AND p.pull_request.number IS NOT NULL
    GROUP BY p.repository.full_name, p.pull_request.number, p.review.id
), gitlab_events AS (
    SELECT delivery_id, received_at, event_type, json_transform(payload, '{
        "user": {"id": "BIGINT", "username": "VARCHAR"},
        "project": {"id": "BIGINT", "path_with_namespace": "VARCHAR",
            "default_branch": "VARCHAR"},
        "object_attributes": {"id": "VARCHAR", "iid": "BIGINT", "title": "VARCHAR",
            "action": "VARCHAR", "state": "VARCHAR", "author_id": "BIGINT",
            "source_branch": "VARCHAR", "target_branch": "VARCHAR",
            "source_project_id": "BIGINT", "created_at": "VARCHAR", "updated_at": "VARCHAR",
            "merged_at": "VARCHAR", "closed_at": "VARCHAR", "merge_commit_sha": "VARCHAR",
            "squash_commit_sha": "VARCHAR", "last_commit": {"id": "VARCHAR"},
            "noteable_type": "VARCHAR", "system": "BOOLEAN"},
        "merge_request": {"iid": "BIGINT", "author_id": "BIGINT"}}') AS p
    FROM raw.events
    WHERE source = 'gitlab' AND event_type IN ('merge_request', 'note')
), gitlab_states AS (
    SELECT 'gitlab:' || p.project.path_with_namespace || '!' || p.object_attributes.iid
            AS pr_key,
        'gitlab' AS source, p.project.path_with_namespace AS repo,
        p.object_attributes.iid AS number, p.object_attributes.title AS title,
        -- The hook names the author by id; its user is whoever acted (the author on open).
        coalesce(max(p.user.username) FILTER (WHERE p.user.id = p.object_attributes.author_id)
                OVER (PARTITION BY p.project.path_with_namespace, p.object_attributes.iid),
            p.object_attributes.author_id::VARCHAR) AS author,
        p.object_attributes.author_id AS author_id,
        p.object_attributes.target_branch AS base_branch,
        p.project.default_branch AS default_branch,
        p.object_attributes.source_branch AS head_branch,
        lower(p.object_attributes.last_commit.id) AS head_sha,
        coalesce(p.object_attributes.source_project_id = p.project.id, true) AS head_in_repo,
        CASE lower(p.object_attributes.state) WHEN 'opened' THEN 'open' WHEN 'locked' THEN 'open'
            ELSE lower(p.object_attributes.state) END AS state,
        dcicd_ts(p.object_attributes.created_at) AS opened_at,
        -- The API tells merged_at; a hook only by the time of its `merge` delivery.
        coalesce(dcicd_ts(p.object_attributes.merged_at),
            CASE WHEN p.object_attributes.action = 'merge'
                THEN coalesce(dcicd_ts(p.object_attributes.updated_at), received_at) END,
            CASE WHEN p.object_attributes.state = 'merged'
                THEN coalesce(dcicd_ts(p.object_attributes.updated_at), received_at) END)
            AS merged_at,
        CASE WHEN p.object_attributes.state = 'closed'
            THEN coalesce(dcicd_ts(p.object_attributes.closed_at),
                dcicd_ts(p.object_attributes.updated_at), received_at) END AS closed_at,
        lower(p.object_attributes.merge_commit_sha) AS merge_commit_sha,
        lower(p.object_attributes.squash_commit_sha) AS squash_commit_sha,
        NULL::BIGINT AS additions, NULL::BIGINT AS deletions, NULL::BIGINT AS changed_files,
        dcicd_ts(p.object_attributes.updated_at) AS updated_at, received_at, delivery_id
    FROM gitlab_events
    WHERE event_type = 'merge_request' AND p.object_attributes.iid IS NOT NULL
), gitlab_reviews AS (
    -- An approval (per approver: it stands while their latest approval action approves), and
    -- a person's note on a merge request (not a system note).
    SELECT 'gitlab:' || any_value(p.project.path_with_namespace) || '!'
            || any_value(p.object_attributes.iid) AS pr_key,
        p.user.id::VARCHAR AS reviewer, NULL AS pr_author,
        min(received_at) FILTER (WHERE p.object_attributes.action IN ('approved', 'approval'))
            AS first_at,
        CASE WHEN arg_max(p.object_attributes.action, (received_at, delivery_id))
                IN ('approved', 'approval')
            THEN max(received_at) FILTER (WHERE p.object_attributes.action
                IN ('approved', 'approval')) END AS approved_at
    FROM gitlab_events
    WHERE event_type = 'merge_request' AND p.user.id IS NOT NULL
        AND p.object_attributes.action IN ('approved', 'approval', 'unapproved', 'unapproval')
    GROUP BY p.project.path_with_namespace, p.object_attributes.iid, p.user.id
    HAVING bool_or(p.object_attributes.action IN ('approved', 'approval'))
    UNION ALL
    SELECT 'gitlab:' || p.project.path_with_namespace || '!' || p.merge_request.iid,
        p.user.id::VARCHAR, p.merge_request.author_id::VARCHAR,
        coalesce(dcicd_ts(p.object_attributes.created_at), received_at), NULL
    FROM gitlab_events
    WHERE event_type = 'note' AND p.object_attributes.noteable_type = 'MergeRequest'
        AND NOT coalesce(p.object_attributes.system, false) AND p.merge_request.iid IS NOT NULL
), states AS (
    SELECT * EXCLUDE (author_id), author_id::VARCHAR AS author_id FROM gitlab_states
    UNION ALL BY NAME
    SELECT *, author AS author_id FROM github_states
), latest AS (
    -- The latest state of each (the newest update, then the last received); a merge is final,
    -- so the merge time and the commits it made come from whichever delivery told them.
    SELECT * EXCLUDE (merged_at, merge_commit_sha, squash_commit_sha),
        min(merged_at) OVER pr AS merged_at,
        arg_max(merge_commit_sha, (merged_at IS NOT NULL, updated_at, received_at)) OVER pr
            AS merge_commit_sha,
        arg_max(squash_commit_sha, (merged_at IS NOT NULL, updated_at, received_at)) OVER pr
            AS squash_commit_sha
    FROM states
    WINDOW pr AS (PARTITION BY pr_key)
    QUALIFY row_number() OVER (
        PARTITION BY pr_key ORDER BY updated_at DESC NULLS LAST, received_at DESC,
            delivery_id DESC) = 1
), api_commits AS (
    -- The commits the history import listed for a pull request (GitHub: author date, as
    -- core.commit_graph takes it).
    SELECT 'github:' || p.repository.full_name || '#' || p.pull_request AS pr_key,
        lower(p.commit.sha) AS sha,
        coalesce(dcicd_ts(p.commit.commit.author.date), dcicd_ts(p.commit.commit.committer.date))
            AS committed_at
    FROM (
        SELECT json_transform(payload, '{"repository": {"full_name": "VARCHAR"},
            "pull_request": "BIGINT", "commit": {"sha": "VARCHAR",
                "commit": {"author": {"date": "VARCHAR"}, "committer": {"date": "VARCHAR"}}}}')
            AS p
        FROM raw.events
        WHERE source = 'github' AND event_type = 'commit'
    )
    WHERE p.pull_request IS NOT NULL
    UNION
    SELECT 'gitlab:' || p.project.path_with_namespace || '!' || p.merge_request,
        lower(p.commit.id),
        coalesce(dcicd_ts(p.commit.authored_date), dcicd_ts(p.commit.committed_date))
    FROM (
        SELECT json_transform(payload, '{"project": {"path_with_namespace": "VARCHAR"},
            "merge_request": "BIGINT", "commit": {"id": "VARCHAR", "authored_date": "VARCHAR",
                "committed_date": "VARCHAR"}}') AS p
        FROM raw.events
        WHERE source = 'gitlab' AND event_type = 'commit'
    )
    WHERE p.merge_request IS NOT NULL
), spans AS (
    SELECT repo, branch, sha, committed_at, pushed_at AS first_pushed_at, s.from_seq,
        s.pushed_at, s.until_seq
    FROM (SELECT *, unnest(pushed_spans) AS s FROM core.commits)
), head_pushes AS (
    -- The push that brought each pull request's head sha to its head branch (the latest such
    -- push before it was merged or closed).
    SELECT l.pr_key, l.repo, l.head_branch, l.base_branch, l.opened_at, s.from_seq AS upto_seq
    FROM latest l
    JOIN spans s ON s.repo = l.repo AND s.branch = l.head_branch AND s.sha = l.head_sha
    WHERE l.head_in_repo
    QUALIFY row_number() OVER (
        PARTITION BY l.pr_key
        ORDER BY s.pushed_at <= coalesce(l.merged_at, l.closed_at, 'infinity'::TIMESTAMPTZ) DESC,
            s.from_seq DESC) = 1
), heads AS (
    -- A branch name may be used again: a pull request's commits come after the head of the
    -- previous one from the same branch.
    SELECT *, coalesce(lag(upto_seq) OVER (
            PARTITION BY repo, head_branch ORDER BY opened_at, pr_key), 0) AS after_seq
    FROM head_pushes
), pushed_commits AS (
    SELECT h.pr_key, c.sha, c.committed_at
    FROM heads h
    JOIN spans c ON c.repo = h.repo AND c.branch = h.head_branch
        AND c.from_seq > h.after_seq AND c.from_seq <= h.upto_seq
        AND coalesce(c.until_seq > h.upto_seq, true)
    WHERE NOT EXISTS (
        SELECT 1 FROM core.commits b
        WHERE b.repo = h.repo AND b.branch = h.base_branch AND b.sha = c.sha
            AND b.pushed_at < c.first_pushed_at)
), own_commits AS (
    SELECT pr_key, own_commits_from,
        list({'sha': sha, 'committed_at': committed_at} ORDER BY committed_at, sha)
            AS own_commits
    FROM (
        SELECT DISTINCT pr_key, sha, committed_at, 'api' AS own_commits_from FROM api_commits
        UNION ALL
        SELECT DISTINCT pr_key, sha, committed_at, 'pushes' FROM pushed_commits
        WHERE pr_key NOT IN (SELECT pr_key FROM api_commits)
    )
    GROUP BY pr_key, own_commits_from
), reviews AS (
    SELECT r.pr_key,
        min(r.first_at) FILTER (WHERE coalesce(r.reviewer <> coalesce(l.author_id, r.pr_author),
            true)) AS first_review_at,
        min(r.approved_at) FILTER (WHERE coalesce(r.reviewer <> coalesce(l.author_id,
            r.pr_author), true)) AS approved_at
    FROM (SELECT * FROM github_reviews UNION ALL SELECT * FROM gitlab_reviews) r
    LEFT JOIN latest l USING (pr_key)
    GROUP BY r.pr_key
)
SELECT l.pr_key, l.source, l.repo, l.number, l.title, l.author, l.base_branch,
    coalesce(l.default_branch, 'main') AS default_branch, l.head_branch, l.head_sha,
    CASE WHEN l.merged_at IS NOT NULL THEN 'merged' ELSE l.state END AS state,
    l.opened_at,
    list_min(list_transform(o.own_commits, lambda c: c.committed_at)) AS first_commit_at,
    r.first_review_at, r.approved_at, l.merged_at,
    CASE WHEN l.merged_at IS NOT NULL THEN coalesce(l.closed_at, l.merged_at)
        WHEN l.state = 'closed' THEN l.closed_at END AS closed_at,
    CASE WHEN l.merged_at IS NOT NULL THEN l.merge_commit_sha END AS merge_commit_sha,
    CASE WHEN l.merged_at IS NOT NULL THEN l.squash_commit_sha END AS squash_commit_sha,
    l.additions, l.deletions, l.changed_files,
    coalesce(o.own_commits, []) AS own_commits, o.own_commits_from,
    l.updated_at
FROM latest l
LEFT JOIN own_commits o USING (pr_key)
LEFT JOIN reviews r USING (pr_key)
