-- description: The gaps the history import filled: every object (a GitHub workflow run attempt, a GitLab pipeline, a PagerDuty incident) the provider's API listed and no webhook ever delivered, with its name, link and the day ops.collection counts it on. A webhook delivery that arrives late takes its object off the list.
-- materialization: by_key
-- unique_key: object_key
-- key ops.collection_objects: object_key
SELECT source, repo, day, object_key, object_kind, provider_id, attempt, name, url, created_at,
    import_delivery_id
FROM ops.collection_objects
WHERE filled
