-- description: One incident: PagerDuty incidents (a note or other delivery about one is none), and GitHub/GitLab issues labelled incident in their latest state (or naming "root cause: <sha>"), with when they opened and were last resolved (NULL while reopened), and the production deployment that caused it (the one that shipped its named root cause, else the service's latest one before it opened, within the attribution window).
WITH pagerduty_events AS (
    SELECT received_at, json_transform(payload, '{"event": {"event_type": "VARCHAR",
        "occurred_at": "VARCHAR", "data": {"id": "VARCHAR", "type": "VARCHAR",
            "title": "VARCHAR", "created_at": "VARCHAR", "urgency": "VARCHAR",
            "service": {"id": "VARCHAR", "summary": "VARCHAR"},
            "incident": {"id": "VARCHAR"}}}}') AS p
    FROM raw.events
    WHERE source = 'pagerduty' AND starts_with(event_type, 'incident.')
), pagerduty_keyed AS (
    -- An event's data is the incident itself (type `incident`), or another object about it (a
    -- note, a responder, a status update), which names its incident in data.incident.
    SELECT p.event.event_type AS event_type, dcicd_ts(p.event.occurred_at) AS occurred_at,
        received_at, p.event.data AS data,
        coalesce(p.event.data.type = 'incident',
            p.event.data.type IS NULL AND p.event.data.incident.id IS NULL) AS about_itself,
        CASE WHEN about_itself THEN p.event.data.id ELSE p.event.data.incident.id END AS id,
        p.event.event_type IN ('incident.triggered', 'incident.acknowledged',
            'incident.unacknowledged', 'incident.resolved', 'incident.reopened') AS lifecycle
    FROM pagerduty_events
), pagerduty AS (
    SELECT
        'pagerduty:' || id AS incident_key,
        'pagerduty' AS source,
        any_value(data.service.id) FILTER (WHERE about_itself) AS pd_service_id,
        any_value(data.service.summary) FILTER (WHERE about_itself) AS pd_service_name,
        NULL AS repo,
        arg_max(data.title, (occurred_at, received_at))
            FILTER (WHERE about_itself AND data.title IS NOT NULL) AS title,
        -- v3 incident events carry no creation time: the trigger's occurred_at opens it.
        -- Seen only resolving, an incident's opening is unknown (NULL), not its resolution.
        coalesce(min(occurred_at) FILTER (WHERE event_type = 'incident.triggered'),
            min(dcicd_ts(data.created_at)) FILTER (WHERE about_itself)) AS opened_at,
        -- Resolved when its latest lifecycle event resolves it (a reopening clears it); notes,
        -- priority, assignment and escalation change nothing.
        CASE WHEN arg_max(event_type, (occurred_at, received_at)) FILTER (WHERE lifecycle)
                = 'incident.resolved'
            THEN max(occurred_at) FILTER (WHERE event_type = 'incident.resolved') END
            AS resolved_at,
        NULL AS root_cause_sha,
        true AS is_incident
    FROM pagerduty_keyed
    WHERE id IS NOT NULL
    GROUP BY id
    -- A delivery about another object never makes an incident by itself.
    HAVING bool_or(about_itself)
), github_events AS (
    SELECT received_at, json_transform(payload, '{"action": "VARCHAR", "issue": {"id": "UBIGINT",
        "number": "BIGINT", "title": "VARCHAR", "body": "VARCHAR", "state": "VARCHAR",
        "created_at": "VARCHAR", "closed_at": "VARCHAR", "updated_at": "VARCHAR",
        "labels": [{"name": "VARCHAR"}]},
        "repository": {"full_name": "VARCHAR"}}') AS p
    FROM raw.events
    WHERE source = 'github' AND event_type = 'issues'
), gitlab_events AS (
    SELECT received_at, json_transform(payload, '{"object_attributes": {"id": "UBIGINT",
        "iid": "BIGINT", "title": "VARCHAR", "description": "VARCHAR", "state": "VARCHAR",
        "action": "VARCHAR", "created_at": "VARCHAR", "closed_at": "VARCHAR",
        "updated_at": "VARCHAR"},
        "labels": [{"title": "VARCHAR"}], "changes": {"labels": "JSON"},
        "project": {"path_with_namespace": "VARCHAR"}}') AS p
    FROM raw.events
    WHERE source = 'gitlab' AND event_type = 'issue'
), issue_events AS (
    -- Every delivery carries the issue as it then was; `lifecycle` marks those that open,
    -- close, reopen or (un)label it, which alone decide its state and labels.
    SELECT 'github:' || p.issue.id AS incident_key, 'github' AS source,
        p.repository.full_name AS repo, p.issue.title AS title, p.issue.body AS body,
        p.issue.state AS state, dcicd_ts(p.issue.created_at) AS created_at,
        dcicd_ts(p.issue.closed_at) AS closed_at,
        coalesce(dcicd_ts(p.issue.updated_at), received_at) AS updated_at, received_at,
        list_transform(p.issue.labels, lambda l: lower(l.name)) AS labels,
        coalesce(p.action IN ('opened', 'closed', 'reopened', 'labeled', 'unlabeled'), true)
            AS lifecycle
    FROM github_events
    UNION ALL
    SELECT 'gitlab:' || p.object_attributes.id, 'gitlab', p.project.path_with_namespace,
        p.object_attributes.title, p.object_attributes.description,
        CASE p.object_attributes.state WHEN 'opened' THEN 'open' ELSE p.object_attributes.state END,
        dcicd_ts(p.object_attributes.created_at), dcicd_ts(p.object_attributes.closed_at),
        coalesce(dcicd_ts(p.object_attributes.updated_at), received_at), received_at,
        list_transform(p.labels, lambda l: lower(l.title)),
        -- GitLab (un)labels an issue with an `update` whose changes name the labels.
        coalesce(p.object_attributes.action IN ('open', 'close', 'reopen'), true)
            OR p.changes.labels IS NOT NULL
    FROM gitlab_events
), issues AS (
    -- The latest lifecycle delivery gives the state and labels (the latest of any kind when
    -- none is known); the latest of any kind gives title and body.
    SELECT incident_key, any_value(source) AS source, NULL AS pd_service_id,
        NULL AS pd_service_name, any_value(repo) AS repo,
        arg_max(title, (updated_at, received_at)) AS title,
        min(created_at) AS opened_at,
        CASE WHEN arg_max(state, (lifecycle, updated_at, received_at)) = 'closed'
            THEN arg_max(coalesce(closed_at, updated_at), (lifecycle, updated_at, received_at))
            END AS resolved_at,
        nullif(regexp_extract(arg_max(body, (updated_at, received_at)),
            'root cause:\s*([0-9a-fA-F]{7,64})', 1, 'i'), '') AS root_cause_sha,
        -- Labelled in its latest state: a removed label no longer counts.
        coalesce(list_contains(arg_max(labels, (lifecycle, updated_at, received_at)), 'incident'),
            false) AS labelled_incident,
        arg_max(labels, (lifecycle, updated_at, received_at)) AS labels
    FROM issue_events
    GROUP BY incident_key
), all_incidents AS (
    SELECT * EXCLUDE (is_incident) FROM pagerduty
    UNION ALL BY NAME
    SELECT * EXCLUDE (labelled_incident) FROM issues
    WHERE labelled_incident OR root_cause_sha IS NOT NULL
), incidents AS (
    SELECT i.incident_key, i.source,
        -- In a repository services share, the service a label names (else the repository).
        coalesce(pd.service, rs.service, (
            SELECT arg_min(sp.service, sp.position) FROM config.service_paths sp
            WHERE sp.repo = i.repo AND sp.shared AND list_contains(i.labels, lower(sp.service))
        ), i.pd_service_name, i.repo) AS service,
        i.repo, i.title, i.opened_at, i.resolved_at, lower(i.root_cause_sha) AS root_cause_sha
    FROM all_incidents i
    LEFT JOIN config.service_repositories rs USING (repo)
    LEFT JOIN (SELECT service, unnest(pagerduty_services) AS pd_key FROM config.services) pd
        ON pd.pd_key IN (i.pd_service_id, i.pd_service_name)
), production AS (
    SELECT deployment_key, service, sha, deployed_at
    FROM core.deployments
    WHERE is_production AND status = 'success'
), by_root_cause AS (
    -- The first production deployment of the service that shipped the named commit: in its
    -- changes, or as its own sha. A short sha names the commit it begins.
    SELECT incident_key, arg_min(deployment_key, (deployed_at, deployment_key)) AS deployment_key
    FROM (
        SELECT i.incident_key, c.deployment_key, c.deployed_at
        FROM incidents i
        JOIN marts.deployment_changes c
            ON c.service = i.service AND (starts_with(c.sha, i.root_cause_sha)
                -- or the squash (merge, rebased) commit that stands for a pull request's
                OR starts_with(c.via_sha, i.root_cause_sha))
        UNION ALL
        SELECT i.incident_key, p.deployment_key, p.deployed_at
        FROM incidents i
        JOIN production p ON p.service = i.service AND starts_with(p.sha, i.root_cause_sha)
    )
    GROUP BY incident_key
), by_window AS (
    -- Else the service's latest production deployment before the incident opened, within the
    -- attribution window.
    SELECT i.incident_key, arg_max(p.deployment_key, (p.deployed_at, p.deployment_key))
        AS deployment_key
    FROM incidents i
    JOIN production p
        ON p.service = i.service AND p.deployed_at <= i.opened_at
        AND p.deployed_at > i.opened_at - to_days((SELECT attribution_window_days FROM config.settings))
    GROUP BY i.incident_key
)
SELECT i.*, coalesce(r.deployment_key, w.deployment_key) AS caused_by_deployment_key
FROM incidents i
LEFT JOIN by_root_cause r USING (incident_key)
LEFT JOIN by_window w USING (incident_key)
