"""collection: webhooks that miss objects, fall behind, or stop (the rollout's collection alerts).

Three checks, each an anomaly of kind `collection`:
- share ("Collection Failure: > 1% of workflows"): per source and repository, the objects
  (workflow run attempts, pipelines, incidents: ops.collection_objects) created in the last
  `collection_window_days` (to the source's newest object) of which the webhooks delivered less
  than `collection_min_share`; the rest are the gaps the history import filled
  (ops.collection_gaps). Objects created before a repository's first webhook delivery are
  history the webhooks were never set up for, and are not counted; a window with fewer than
  `collection_min_objects` objects is not judged. Critical when ten times more is missing than
  allowed (under 90% by default).
- latency ("High Latency: > 5 minutes processing delay"): per source, the P95 delay between a
  webhook's receipt (its received_at, stamped by `dcicd serve`) and its load into raw.events,
  over the deliveries loaded in the hour before the receiver's latest load, above
  `collection_latency_minutes`. Only the receiver's landing files (`receiver-*.ndjson`) are
  measured: an exported file (`dcicd ingest`, the demo) carries its deliveries' original receipt
  times, so its load delay says nothing about processing. Critical at four times the limit.
- quiet: a source whose webhooks delivered in at least 20 distinct minutes of the 28 days
  before its last delivery and that has been silent since, to the newest delivery of any
  source (webhook or import), for longer than `collection_quiet_hours` and twice its longest
  silence of those 28 days (nights and weekends are in that history). Critical. Measured on
  the data, as the other detectors are; the freshness checks on raw/events watch the clock.

A webhook delivery is any delivery whose delivery_id does not start with `import:`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbt_like_sql.catalog import fetch_dicts, table_exists
from ml.anomaly.store import as_frame

if TYPE_CHECKING:
    import polars as pl

    from dcicd_platform.config import AnomalyThresholds

SHARE_SQL = """
WITH started AS (
    -- The creation time of the first object a webhook delivered, per source and repository.
    SELECT source, repo, min(created_at) AS since
    FROM ops.collection_objects WHERE delivered GROUP BY source, repo
), newest AS (
    SELECT source, max(created_at) AS as_of FROM ops.collection_objects GROUP BY source
), recent AS (
    SELECT o.*, n.as_of
    FROM ops.collection_objects o
    JOIN started s ON s.source = o.source AND s.repo = o.repo
    JOIN newest n ON n.source = o.source
    WHERE o.created_at >= s.since AND o.created_at > n.as_of - to_days($window_days)
), pagerduty_services AS (
    SELECT unnest(pagerduty_services) AS pd_service, service FROM config.services
)
SELECT r.source, r.repo, any_value(r.object_kind) AS object_kind,
    coalesce(
        (SELECT min(m.service) FROM config.service_repositories m WHERE m.repo = r.repo),
        (SELECT min(p.service) FROM pagerduty_services p WHERE p.pd_service = r.repo),
        r.repo) AS service,
    count(*) AS objects,
    count(*) FILTER (WHERE r.delivered) AS delivered,
    count(*) FILTER (WHERE r.filled) AS filled,
    min(r.created_at) AS window_start,
    any_value(r.as_of) AS as_of,
    max(r.created_at) FILTER (WHERE r.filled) AS last_gap_at
FROM recent r
GROUP BY r.source, r.repo
"""

LATENCY_SQL = """
WITH receiver_loads AS (
    SELECT load_id, loaded_at FROM raw.files
    WHERE regexp_matches(landing_file, '(^|/)receiver-[^/]*$')
), recent AS (
    SELECT load_id, loaded_at FROM receiver_loads
    WHERE loaded_at >= (SELECT max(loaded_at) FROM receiver_loads) - INTERVAL 1 HOUR
), delays AS (
    SELECT e.source, l.loaded_at, epoch(l.loaded_at) - epoch(e.received_at) AS delay_s
    FROM raw.events e
    JOIN recent l ON l.load_id = e.load_id
    WHERE NOT starts_with(e.delivery_id, 'import:')
)
SELECT source, count(*) AS deliveries,
    count(*) FILTER (WHERE delay_s > $limit_s) AS late,
    quantile_cont(delay_s, 0.95) AS p95_s,
    max(delay_s) AS max_s,
    max(loaded_at) AS last_loaded_at
FROM delays
GROUP BY source
"""

# A source's silences over the 28 days to its last webhook delivery: each source's last minute
# first (a cheap aggregate), then only those 28 days grouped by minute (since 1970, as
# integers: cheaper than truncated times), not all history.
QUIET_SQL = """
WITH webhooks AS (
    SELECT source, received_at FROM raw.events WHERE NOT starts_with(delivery_id, 'import:')
), latest AS (
    SELECT source, epoch_us(max(received_at)) // 60000000 AS last_minute
    FROM webhooks GROUP BY source
), minutes AS (
    SELECT w.source, epoch_us(w.received_at) // 60000000 AS minute,
        max(w.received_at) AS last_at, any_value(l.last_minute) AS last_minute
    FROM webhooks w JOIN latest l USING (source)
    WHERE w.received_at >= to_timestamp((l.last_minute - 28 * 24 * 60) * 60)
    GROUP BY w.source, minute
), silences AS (
    SELECT source, last_at,
        60 * (minute - lag(minute) OVER (PARTITION BY source ORDER BY minute)) AS silence_s
    FROM minutes
    WHERE minute > last_minute - 28 * 24 * 60
)
SELECT source, count(*) AS active_minutes, coalesce(max(silence_s), 0) AS longest_s,
    max(last_at) AS last_at,
    (SELECT max(received_at) FROM raw.events) AS as_of
FROM silences
GROUP BY source
"""

# Every statement this detector runs (the lineage of ml/anomalies is read from these).
SQL = (SHARE_SQL, LATENCY_SQL, QUIET_SQL)

OBJECTS = {"workflow_run": "workflow runs", "pipeline": "pipelines", "incident": "incidents"}
QUIET_MIN_ACTIVE_MINUTES = 20
QUIET_HISTORY_FACTOR = 2
LATENCY_CRITICAL_FACTOR = 4
SHARE_CRITICAL_FACTOR = 10


def _share(conn, t: AnomalyThresholds) -> list[dict]:
    """Sources and repositories whose webhooks missed more than allowed of their objects."""
    if not table_exists(conn, "ops.collection_objects"):
        return []
    allowed_missing = max(1 - t.collection_min_share, 1e-9)
    found = []
    for r in fetch_dicts(conn, SHARE_SQL, {"window_days": t.collection_window_days}):
        share = r["delivered"] / r["objects"]
        if r["objects"] < t.collection_min_objects or share >= t.collection_min_share:
            continue
        missing = (1 - share) / allowed_missing
        what = OBJECTS.get(r["object_kind"], "objects")
        found.append(
            {
                "kind": "collection",
                "service": r["service"],
                "entity_key": f"{r['source']}|{r['repo']}|share",
                "detected_at": r["last_gap_at"] or r["as_of"],
                "observed": share,
                "expected": t.collection_min_share,
                "score": missing,
                "severity": "critical" if missing >= SHARE_CRITICAL_FACTOR else "warning",
                "explanation": f"{r['source']} {r['repo']}: webhooks delivered {r['delivered']}"
                f" of the {r['objects']} {what} created {r['window_start']:%Y-%m-%d} to"
                f" {r['as_of']:%Y-%m-%d} ({share:.1%}, target {t.collection_min_share:.0%});"
                f" the history import filled {r['filled']} (ops.collection_gaps)",
            }
        )
    return found


def _latency(conn, t: AnomalyThresholds) -> list[dict]:
    """Sources whose webhooks were loaded too long after the receiver took them."""
    if not table_exists(conn, "raw.events"):
        return []
    limit_s = t.collection_latency_minutes * 60
    found = []
    for r in fetch_dicts(conn, LATENCY_SQL, {"limit_s": limit_s}):
        if r["p95_s"] is None or r["p95_s"] <= limit_s:
            continue
        factor = r["p95_s"] / limit_s
        found.append(
            {
                "kind": "collection",
                "service": None,
                "entity_key": f"{r['source']}|latency",
                "detected_at": r["last_loaded_at"],
                "observed": r["p95_s"] / 60,
                "expected": t.collection_latency_minutes,
                "score": factor,
                "severity": "critical" if factor >= LATENCY_CRITICAL_FACTOR else "warning",
                "explanation": f"{r['source']} webhooks are loaded {r['p95_s'] / 60:.1f} min"
                f" after they arrive (P95 of the last hour's {r['deliveries']} deliveries;"
                f" {r['late']} over {t.collection_latency_minutes:g} min, the longest"
                f" {r['max_s'] / 60:.1f} min)",
            }
        )
    return found


def _quiet(conn, t: AnomalyThresholds) -> list[dict]:
    """Sources that used to deliver and have been silent far longer than ever before."""
    if not table_exists(conn, "raw.events"):
        return []
    found = []
    for r in fetch_dicts(conn, QUIET_SQL):
        if r["active_minutes"] < QUIET_MIN_ACTIVE_MINUTES:
            continue
        silence_s = (r["as_of"] - r["last_at"]).total_seconds()
        limit_s = max(t.collection_quiet_hours * 3600, QUIET_HISTORY_FACTOR * r["longest_s"])
        if silence_s <= limit_s:
            continue
        found.append(
            {
                "kind": "collection",
                "service": None,
                "entity_key": f"{r['source']}|quiet",
                "detected_at": r["as_of"],
                "observed": silence_s / 3600,
                "expected": limit_s / 3600,
                "score": silence_s / limit_s,
                "severity": "critical",
                "explanation": f"{r['source']} webhooks went quiet: none since"
                f" {r['last_at']:%Y-%m-%d %H:%M} UTC, {silence_s / 3600:.1f} h before the newest"
                f" delivery; its longest silence of the 28 days before was"
                f" {r['longest_s'] / 3600:.1f} h",
            }
        )
    return found


def collection(conn, t: AnomalyThresholds) -> pl.DataFrame:
    """Collection anomalies: missed objects, late loads and silent sources, one row each."""
    return as_frame(_share(conn, t) + _latency(conn, t) + _quiet(conn, t))


def windowed(conn, t: AnomalyThresholds) -> pl.DataFrame:
    """The same anomalies as `collection`, each source's silences read over its last 28 days
    only (every anomaly of the kind is judged again: each reads a bounded window)."""
    return as_frame(_share(conn, t) + _latency(conn, t) + _quiet(conn, t))
