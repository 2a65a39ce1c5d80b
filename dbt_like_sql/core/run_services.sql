-- description: Which services a CI run (and so each of its jobs) builds. A service without paths: every run of its repositories. A service with paths: the runs of a workflow its `workflows` patterns match (name or path); a run whose workflow no service of its repository names belongs to the services whose paths its commits touched (the commits of the push that brought its sha to its branch, else the sha's own files), and to none when they touched no service's paths.
WITH runs AS (
    SELECT run_key, repo, workflow, workflow_path, branch, lower(sha) AS sha
    FROM core.pipeline_runs
), by_repository AS (
    SELECT r.run_key, s.service, 'repository' AS mapped_by
    FROM runs r
    JOIN config.service_paths s ON s.repo = r.repo AND len(s.paths) = 0
), by_workflow AS (
    SELECT r.run_key, s.service, 'workflow' AS mapped_by
    FROM runs r
    JOIN config.service_paths s ON s.repo = r.repo AND len(s.paths) > 0
    WHERE len(list_filter(s.workflows, lambda pattern:
        r.workflow GLOB pattern OR coalesce(r.workflow_path GLOB pattern, false))) > 0
), pushed AS (
    -- The commits the push that brought the run's sha to its branch first pushed.
    SELECT r.run_key, r.repo, coalesce(lower(together.sha), r.sha) AS sha
    FROM runs r
    LEFT JOIN core.commits c ON c.repo = r.repo AND c.branch = r.branch AND lower(c.sha) = r.sha
    LEFT JOIN core.commits together
        ON together.repo = c.repo AND together.branch = c.branch AND together.push_id = c.push_id
    WHERE r.repo IN (SELECT repo FROM config.service_paths WHERE len(paths) > 0)
        AND r.run_key NOT IN (SELECT run_key FROM by_workflow)
), by_paths AS (
    SELECT DISTINCT p.run_key, cs.service, 'paths' AS mapped_by
    FROM pushed p
    JOIN core.commit_services cs ON cs.repo = p.repo AND cs.sha = p.sha
)
SELECT * FROM by_repository
UNION ALL SELECT * FROM by_workflow
UNION ALL SELECT * FROM by_paths
