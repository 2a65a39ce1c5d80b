-- description: One health sample of a service in an environment (requests, errors, P95 latency over the sample's interval), as reported to /ingest/health; the error rate is errors per request.
-- materialization: incremental
-- unique_key: delivery_id
-- latest_by: received_at DESC
WITH samples AS (
    SELECT delivery_id, received_at, json_transform(payload, '{"service": "VARCHAR",
        "environment": "VARCHAR", "ts": "VARCHAR", "requests": "BIGINT", "errors": "BIGINT",
        "latency_p95_ms": "DOUBLE"}') AS p
    FROM raw.events
    WHERE source = 'metrics' AND event_type = 'health_sample'
)
SELECT delivery_id, p.service AS service, p.environment AS environment, dcicd_ts(p.ts) AS ts,
    p.requests AS requests, p.errors AS errors,
    p.errors / nullif(p.requests, 0) AS error_rate,
    p.latency_p95_ms AS latency_p95_ms,
    received_at
FROM samples
