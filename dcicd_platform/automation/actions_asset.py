"""ops/actions in the Dagster UI: each decision the response jobs record materializes it, with
the day's decisions as metadata, so the audit is read where the runs are.

Its data version follows the rows other tables read from it, the rollbacks the automation
executed (the DORA marts count their deployments as failed): a shadow or suppressed decision
adds a row to the audit but leaves the marts in sync, an executed rollback makes them stale.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
from dagster._core.definitions.data_version import DEFAULT_DATA_VERSION

from dcicd_platform.assets.versions import table_version

ACTIONS_KEY = dg.AssetKey(["ops", "actions"])
# Rows of the day's table in the metadata: the newest first (the rest are counted).
SHOWN_TODAY = 30
# What the DORA marts read of the audit (dbt_like_sql/marts/production_deployments.sql).
_READ_BY_MARTS = (
    "(SELECT entity_key, action_id FROM ops.actions"
    " WHERE kind = 'rollback' AND decision = 'executed' AND entity_key IS NOT NULL)"
)
# Dagster's own tag names for a data version reported with an event (as an asset's
# MaterializeResult(data_version=...) records it).
_DATA_VERSION_TAGS = ("dagster/data_version", "dagster/data_version_is_user_provided")


def _cell(value: object, limit: int = 140) -> str:
    """A markdown table cell: pipes escaped, newlines flattened, long reasons cut."""
    text = "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def actions_materialization(
    conn: duckdb.DuckDBPyConnection, time_zone: str, now: datetime, decided: str = ""
) -> dg.AssetMaterialization:
    """ops/actions as it stands after a decision: the day's decisions (a day of the reporting
    time zone) counted by decision and listed newest first, the row count, and `decided`, the
    action the run just recorded."""
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    total = conn.execute("SELECT count(*) FROM ops.actions").fetchone()[0]
    today = conn.execute(
        "SELECT requested_at, kind, coalesce(service, ''), decision, reason, mode"
        " FROM ops.actions WHERE requested_at >= ? ORDER BY requested_at DESC, action_id",
        [start],
    ).fetchall()
    counts: dict[str, int] = {}
    for _, _, _, decision, _, _ in today:
        counts[decision] = counts.get(decision, 0) + 1
    lines = ["| time | action | service | decision | mode | reason |", "|---|---|---|---|---|---|"]
    for at, kind, service, decision, reason, mode in today[:SHOWN_TODAY]:
        when = at.astimezone(zone).strftime("%H:%M:%S")
        lines.append(
            f"| {when} | {kind} | {_cell(service)} | {decision} | {mode} | {_cell(reason)} |"
        )
    if len(today) > SHOWN_TODAY:
        lines.append(f"\n…and {len(today) - SHOWN_TODAY} earlier today (`dcicd query`)")
    version = table_version(conn, _READ_BY_MARTS)
    if version.value.startswith("0-"):
        # No executed rollback: the marts read nothing here, as when the audit had never been
        # recorded, and Dagster's version of an external asset never recorded is this one.
        version = DEFAULT_DATA_VERSION
    metadata: dict[str, dg.RawMetadataValue] = {
        "dagster/row_count": total,
        "day": f"{start.date()} ({time_zone})",
        "decisions_today": len(today),
        **{f"today_{decision}": n for decision, n in sorted(counts.items())},
        "today": dg.MetadataValue.md("\n".join(lines) if today else "no decision today"),
    }
    if decided:
        metadata["decided"] = decided
    return dg.AssetMaterialization(
        asset_key=ACTIONS_KEY,
        description="The automation's audit after this run's decision.",
        metadata=metadata,
        tags=dict(zip(_DATA_VERSION_TAGS, (version.value, "true"), strict=True)),
    )
