"""raw/events: landing files loaded into raw.events and raw.quarantine (CONTRACTS.md §2)."""

from pathlib import Path

import dagster as dg

from dcicd_platform.assets.versions import ledger_version
from dcicd_platform.ingest.landing import landing_name
from dcicd_platform.ingest.loader import FileReport, discover, load_file
from dcicd_platform.ingest.schema import ensure_raw_schema
from dcicd_platform.resources import DUCKDB_POOL, HomeResource, WarehouseResource

# What a bad deployment is judged from: loading any of these starts the watch at once
# (automation/watch_trigger.py) instead of at its next five-minute tick.
WATCHED_EVENT_TYPES = ("health_sample", "deployment", "deployment_status")
_WATCHED_SQL = f"""
SELECT count(*) FROM raw.events
WHERE event_type IN ({", ".join(f"'{t}'" for t in WATCHED_EVENT_TYPES)})
    AND load_id IN (SELECT load_id FROM raw.files WHERE list_contains($hashes, content_sha256))
"""


class IngestConfig(dg.Config):
    """Which files to load: the named ones (the landing sensor names one), else all of landing/."""

    files: list[str] = []


def report_table(reports: list[FileReport]) -> str:
    lines = [
        "| file | status | lines | loaded | duplicates | quarantined |",
        "|---|---|---|---|---|---|",
    ]
    for r in reports:
        status = r.status if not r.error else f"{r.status}: {r.error}"
        lines.append(
            f"| {r.path} | {status} | {r.lines} | {r.loaded} | {r.duplicates} | {r.quarantined} |"
        )
    return "\n".join(lines)


@dg.asset(
    key=["raw", "events"],
    group_name="raw",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    owners=["team:platform"],
)
def raw_events(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    warehouse: WarehouseResource,
    home: HomeResource,
) -> dg.MaterializeResult:
    """Every webhook delivery, once, as it arrived; unreadable lines go to raw.quarantine."""
    landing = home.home.landing
    landing.mkdir(parents=True, exist_ok=True)
    paths = [Path(f) for f in config.files] or discover([landing])
    reports = []
    with warehouse.get_connection() as conn:
        ensure_raw_schema(conn)
        for path in paths:
            name = landing_name(path, landing)
            report = load_file(conn, path, name)
            if report.status == "already_loaded" and not config.files:
                continue  # scanning landing/: files loaded before are not news
            reports.append(report)
            context.log.info(
                f"{name}: {report.status}, {report.loaded} loaded, {report.duplicates} duplicates,"
                f" {report.quarantined} quarantined of {report.lines} lines"
                + (f" ({report.error})" if report.error else "")
            )
        total_events = conn.execute("SELECT count(*) FROM raw.events").fetchone()[0]
        version = ledger_version(conn)
        hashes = [r.content_sha256 for r in reports if r.status == "loaded" and r.loaded]
        watched = conn.execute(_WATCHED_SQL, {"hashes": hashes}).fetchone()[0] if hashes else 0
    unreadable = [r for r in reports if r.status == "unreadable"]
    for r in unreadable:
        context.log.error(f"could not read {r.path}: {r.error}")
    if unreadable and config.files:
        # A file named to this run (the landing sensor's one file) that cannot be read fails
        # the run, red in the UI as `dcicd ingest` exits 1. A scan of landing/ (the refresh)
        # loads the others and goes on: one bad file must not stop every hourly refresh.
        raise dg.Failure(
            description="could not read " + "; ".join(f"{r.path}: {r.error}" for r in unreadable),
            metadata={"report": dg.MetadataValue.md(report_table(reports))},
        )
    return dg.MaterializeResult(
        metadata={
            "files": len(reports),
            "lines": sum(r.lines for r in reports),
            "loaded": sum(r.loaded for r in reports),
            "duplicates": sum(r.duplicates for r in reports),
            "quarantined": sum(r.quarantined for r in reports),
            "unreadable_files": len(unreadable),
            "watched_events": watched,
            "dagster/row_count": total_events,
            "report": dg.MetadataValue.md(report_table(reports) if reports else "no new files"),
        },
        data_version=version,
    )
