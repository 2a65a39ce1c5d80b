-- description: Collection accuracy per source, repository (PagerDuty: service id) and day of the objects' creation (in the reporting time zone) (GitHub workflow run attempts, GitLab pipelines, PagerDuty incidents; see ops.collection_objects): objects (seen by a webhook or the import), delivered (by at least one webhook delivery), known (listed by the history import), filled (known but never delivered: the gaps the import filled, listed in ops.collection_gaps) and collected_share = delivered / objects, the share the webhooks collected (target: above 0.99). Without an import every object seen was delivered: a lost delivery shows only once the import lists what the API knows.
-- materialization: by_key
-- unique_key: source, repo, day
-- key ops.collection_objects: source, repo, day
SELECT o.source, o.repo, o.day,
    count(*) AS objects,
    count(*) FILTER (WHERE o.delivered) AS delivered,
    count(*) FILTER (WHERE o.known) AS known,
    count(*) FILTER (WHERE o.filled) AS filled,
    count(*) FILTER (WHERE o.delivered) / nullif(count(*), 0) AS collected_share
FROM ops.collection_objects o
GROUP BY o.source, o.repo, o.day
ORDER BY o.day, o.source, o.repo
