-- description: One production deployment and whether it is rework (DORA 2024's rework rate, CONTRACTS.md §5: unplanned, made because of a production incident). rework_reason, the first that holds: incident_open (deployed while an incident of its service was open: opened at or before it, not resolved before it), incident_window (at most dora.rework_window_hours after such an incident opened, though resolved since), hotfix_branch (its branch or ref matches dora.hotfix_pattern, a regular expression searched in any letter case), hotfix_pull_request (it shipped a pull request whose head branch or title matches it); NULL: not rework. rework_incident_key is the incident it answers (an open one first, then the earliest opened).
WITH settings AS (
    SELECT rework_window_hours, hotfix_pattern FROM config.dora
), deployments AS (
    SELECT p.deployment_key, p.service, p.repo, d.ref, p.deployed_at, p.is_rollback
    FROM marts.production_deployments p
    JOIN core.deployments d USING (deployment_key)
), answering AS (
    -- The incidents of its service a deployment answers: opened at or before it, and either
    -- still open then or opened at most the window before it.
    SELECT d.deployment_key, i.incident_key, i.opened_at,
        i.resolved_at IS NULL OR d.deployed_at <= i.resolved_at AS while_open
    FROM deployments d
    JOIN core.incidents i ON i.service = d.service AND i.opened_at <= d.deployed_at
    CROSS JOIN settings s
    WHERE i.resolved_at IS NULL OR d.deployed_at <= i.resolved_at
        OR epoch(d.deployed_at) - epoch(i.opened_at) <= s.rework_window_hours * 3600
), answered AS (
    SELECT deployment_key,
        arg_min(incident_key, (NOT while_open, opened_at, incident_key)) AS incident_key,
        bool_or(while_open) AS while_open
    FROM answering
    GROUP BY deployment_key
), hotfix_pull_requests AS (
    -- The production deployments that first shipped a merged pull request whose head branch
    -- or title matches the hotfix pattern.
    SELECT c.deployment_key
    FROM marts.pull_request_cycle c
    JOIN core.pull_requests p USING (pr_key)
    CROSS JOIN settings s
    WHERE c.deployment_key IS NOT NULL
        AND (coalesce(regexp_matches(p.head_branch, s.hotfix_pattern, 'i'), false)
            OR coalesce(regexp_matches(p.title, s.hotfix_pattern, 'i'), false))
)
SELECT d.deployment_key, d.service, d.repo, d.ref, d.deployed_at, d.is_rollback,
    a.incident_key AS rework_incident_key,
    coalesce(regexp_matches(d.ref, s.hotfix_pattern, 'i'), false) AS hotfix_branch,
    h.deployment_key IS NOT NULL AS hotfix_pull_request,
    CASE
        WHEN a.while_open THEN 'incident_open'
        WHEN a.incident_key IS NOT NULL THEN 'incident_window'
        WHEN hotfix_branch THEN 'hotfix_branch'
        WHEN hotfix_pull_request THEN 'hotfix_pull_request'
    END AS rework_reason,
    rework_reason IS NOT NULL AS is_rework
FROM deployments d
CROSS JOIN settings s
LEFT JOIN answered a USING (deployment_key)
LEFT JOIN (SELECT DISTINCT deployment_key FROM hotfix_pull_requests) h USING (deployment_key)
