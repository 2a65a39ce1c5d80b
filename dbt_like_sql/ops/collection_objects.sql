-- description: One object a webhook or the history import can bring (a GitHub workflow run attempt, a GitLab pipeline, a PagerDuty incident, whose repo is its PagerDuty service id) and how it was collected: delivered (at least one webhook delivery brought it), known (the history import listed it), filled (known but never delivered: a gap the import filled). created_at is the earliest creation time its deliveries give; day, its day in the reporting time zone, is the day ops.collection counts it on. first_webhook_at is when its first webhook delivery was received.
-- materialization: by_key
-- unique_key: object_key
-- key ops.collection_arrivals: object_key
SELECT
    object_key,
    -- What the API said wins over a webhook's copy (false sorts first: the import's row).
    arg_min(source, channel = 'webhook') AS source,
    arg_min(object_kind, channel = 'webhook') AS object_kind,
    arg_min(repo, channel = 'webhook') AS repo,
    arg_min(provider_id, channel = 'webhook') AS provider_id,
    arg_min(attempt, channel = 'webhook') AS attempt,
    arg_min(name, channel = 'webhook') AS name,
    arg_min(url, channel = 'webhook') AS url,
    min(created_at) AS created_at,
    dcicd_local_day(min(created_at), (SELECT time_zone FROM config.reporting)) AS day,
    bool_or(channel = 'webhook') AS delivered,
    bool_or(channel = 'import') AS known,
    bool_or(channel = 'import') AND NOT bool_or(channel = 'webhook') AS filled,
    min(received_at) FILTER (WHERE channel = 'webhook') AS first_webhook_at,
    min(delivery_id) FILTER (WHERE channel = 'webhook') AS webhook_delivery_id,
    min(delivery_id) FILTER (WHERE channel = 'import') AS import_delivery_id
FROM ops.collection_arrivals
GROUP BY object_key
