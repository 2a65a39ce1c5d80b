-- description: One file a commit added, modified or removed: from the lists each commit of a GitHub or GitLab push carries (`added`, `modified`, `removed`), and from the `files` of a commit the history import asked for one by one (GitHub, for repositories whose services name paths; a rename is its new path added and its old one removed). What decides which services of a monorepo a commit is a change of (core.commit_services).
WITH pushes AS (
    SELECT source, json_transform(payload, '{
        "ref": "VARCHAR",
        "repository": {"full_name": "VARCHAR"},
        "project": {"path_with_namespace": "VARCHAR"},
        "commits": [{"id": "VARCHAR", "added": ["VARCHAR"], "modified": ["VARCHAR"],
            "removed": ["VARCHAR"]}]}') AS p
    FROM raw.events
    WHERE source IN ('github', 'gitlab') AND event_type = 'push'
), pushed_commits AS (
    SELECT CASE source WHEN 'github' THEN p.repository.full_name
            ELSE p.project.path_with_namespace END AS repo,
        unnest(coalesce(p.commits, [])) AS c
    FROM pushes
), pushed AS (
    SELECT repo, lower(c.id) AS sha, unnest(coalesce(c.added, [])) AS path, 'added' AS change
    FROM pushed_commits
    UNION ALL
    SELECT repo, lower(c.id), unnest(coalesce(c.modified, [])), 'modified' FROM pushed_commits
    UNION ALL
    SELECT repo, lower(c.id), unnest(coalesce(c.removed, [])), 'removed' FROM pushed_commits
), imported_files AS (
    SELECT p.repository.full_name AS repo, lower(p.commit.sha) AS sha,
        unnest(p.commit.files) AS f
    FROM (
        SELECT json_transform(payload, '{"repository": {"full_name": "VARCHAR"},
            "commit": {"sha": "VARCHAR", "files": [{"filename": "VARCHAR", "status": "VARCHAR",
                "previous_filename": "VARCHAR"}]}}') AS p
        FROM raw.events
        WHERE source = 'github' AND event_type = 'commit'
    )
    WHERE p.commit.files IS NOT NULL
), imported AS (
    SELECT repo, sha, f.filename AS path,
        CASE WHEN f.status IN ('added', 'removed') THEN f.status
            WHEN f.status IN ('renamed', 'copied') THEN 'added' ELSE 'modified' END AS change
    FROM imported_files
    UNION ALL
    SELECT repo, sha, f.previous_filename, 'removed'
    FROM imported_files
    WHERE f.status = 'renamed' AND f.previous_filename IS NOT NULL
)
-- A commit pushed to several branches, or pushed and imported, lists the same files: one row.
SELECT repo, sha, path, min(change) AS change
FROM (SELECT * FROM pushed UNION ALL SELECT * FROM imported)
WHERE repo IS NOT NULL AND sha IS NOT NULL AND path IS NOT NULL
GROUP BY repo, sha, path
