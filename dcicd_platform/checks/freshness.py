"""Freshness of raw/events per source: one Dagster asset check per source on the asset.

A source's check fails (a warning: it blocks nothing) when its newest delivery in raw.events,
webhook or import, was received longer ago than `freshness.max_lag_minutes.<source>`; a source
that never delivered is not judged (its check passes and says so). Dagster's own freshness
checks judge when an asset was last updated, not the sources inside one table, hence these.
They run whenever raw/events is materialized (each landing file the sensor loads, the hourly
refresh), and are measured against the wall clock, unlike the `collection` anomaly, which reads
the data's own times.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from dbt_like_sql.catalog import table_exists
from dcicd_platform.config import MaxLag
from dcicd_platform.resources import DUCKDB_POOL, SettingsResource, WarehouseResource

RAW_EVENTS = dg.AssetKey(["raw", "events"])
NEWEST_SQL = "SELECT source, max(received_at) FROM raw.events GROUP BY source"
# The envelope's sources (CONTRACTS.md section 2), as the configuration names their lags.
SOURCES = tuple(MaxLag.model_fields)


def check_name(source: str) -> str:
    """The check's name in the UI: `<source>_fresh`."""
    return f"{source}_fresh"


def freshness_results(
    newest: dict[str, datetime], max_lag_minutes: dict[str, int], now: datetime
) -> list[dg.AssetCheckResult]:
    """One result per source: newest maps a source to its newest received_at (absent: never
    delivered), max_lag_minutes a source to the minutes it may lag, now is the time judged at."""
    results = []
    for source in SOURCES:
        limit = max_lag_minutes[source]
        last = newest.get(source)
        if last is None:
            results.append(
                dg.AssetCheckResult(
                    asset_key=RAW_EVENTS,
                    check_name=check_name(source),
                    passed=True,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=f"{source} never delivered: nothing to be fresh",
                    metadata={"max_lag_minutes": limit},
                )
            )
            continue
        lag = (now - last).total_seconds() / 60
        results.append(
            dg.AssetCheckResult(
                asset_key=RAW_EVENTS,
                check_name=check_name(source),
                passed=lag <= limit,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"the newest {source} delivery was received {lag:,.0f} min ago"
                f" (at most {limit} allowed)",
                metadata={
                    "newest_received_at": last.isoformat(),
                    "lag_minutes": round(lag, 1),
                    "max_lag_minutes": limit,
                },
            )
        )
    return results


@dg.multi_asset_check(
    name="raw__events__freshness",
    specs=[
        dg.AssetCheckSpec(
            check_name(source),
            asset=RAW_EVENTS,
            description=f"the newest {source} delivery is recent enough"
            f" (freshness.max_lag_minutes.{source}); not judged until {source} delivers",
            blocking=False,
        )
        for source in SOURCES
    ],
    pool=DUCKDB_POOL,
)
def raw_events_freshness(warehouse: WarehouseResource, settings: SettingsResource):
    """Each source's newest delivery in raw.events against its allowed lag, now."""
    lags = settings.load().freshness.max_lag_minutes.model_dump()
    with warehouse.get_connection() as conn:
        exists = table_exists(conn, "raw.events")
        newest = dict(conn.execute(NEWEST_SQL).fetchall()) if exists else {}
    yield from freshness_results(newest, lags, datetime.now(UTC))
