-- description: One commit of the history the import brought (GitHub and GitLab `commit` envelopes), with its parents: the commit graph a deployment's change set is read from when it knows the deployed shas. committed_at is the author date (GitHub commit.author.date, GitLab authored_date), the clock lead times run on, as core.commits takes the `timestamp` a GitHub push lists (its author date); committer_date is when the commit took its present form (a rebase or an amend sets it anew).
-- materialization: incremental
-- unique_key: commit_key
-- latest_by: delivery_id
WITH github AS (
    SELECT delivery_id, json_transform(payload, '{
        "repository": {"full_name": "VARCHAR"},
        "commit": {"sha": "VARCHAR", "parents": [{"sha": "VARCHAR"}],
            "commit": {"author": {"date": "VARCHAR"}, "committer": {"date": "VARCHAR"}}}}') AS p
    FROM raw.events
    WHERE source = 'github' AND event_type = 'commit'
), gitlab AS (
    SELECT delivery_id, json_transform(payload, '{
        "project": {"path_with_namespace": "VARCHAR"},
        "commit": {"id": "VARCHAR", "parent_ids": ["VARCHAR"], "authored_date": "VARCHAR",
            "committed_date": "VARCHAR"}}') AS p
    FROM raw.events
    WHERE source = 'gitlab' AND event_type = 'commit'
), commits AS (
    SELECT delivery_id, 'github' AS source, p.repository.full_name AS repo,
        lower(p.commit.sha) AS sha,
        list_transform(coalesce(p.commit.parents, []), lambda x: lower(x.sha)) AS parent_shas,
        dcicd_ts(p.commit.commit.author.date) AS committed_at,
        dcicd_ts(p.commit.commit.committer.date) AS committer_date
    FROM github
    UNION ALL
    SELECT delivery_id, 'gitlab', p.project.path_with_namespace, lower(p.commit.id),
        list_transform(coalesce(p.commit.parent_ids, []), lambda x: lower(x)),
        dcicd_ts(p.commit.authored_date), dcicd_ts(p.commit.committed_date)
    FROM gitlab
)
-- A commit is the same object whichever listing brought it (the default branch, a pull
-- request, a deployed sha's history): any one of its envelopes gives the row.
SELECT repo || '@' || sha AS commit_key, source, repo, sha, parent_shas,
    coalesce(committed_at, committer_date) AS committed_at,
    coalesce(committer_date, committed_at) AS committer_date, delivery_id
FROM commits
