"""import/<source>: the hourly history import from the providers' APIs (see sources/).

Each asset imports what `history_import` in the configuration lists and loads it into
raw.events itself (the landing sensor leaves landing/import/ to it); the refresh jobs never
call a provider: only the `history_import` job does.
"""

from datetime import UTC, datetime

import dagster as dg

from dcicd_platform.resources import DUCKDB_POOL, HomeResource, SettingsResource
from dcicd_platform.sources.http import ClientStats, Progress

SOURCES = ("github", "gitlab", "pagerduty")


class _LogProgress(Progress):
    """Rate-limit waits and retries in the run's log (a long import says why it pauses)."""

    def __init__(self, log) -> None:
        self._log = log

    def waiting(self, seconds: float, reason: str) -> None:
        self._log.info(f"waiting {seconds:.0f} s: {reason}")

    def requested(self, stats: ClientStats) -> None:
        if stats.requests % 500 == 0:
            self._log.info(f"{stats.requests} requests ({stats.not_modified} not modified)")


def import_asset(source: str) -> dg.AssetsDefinition:
    """The asset that imports one provider's configured scopes."""

    @dg.asset(
        key=["import", source],
        group_name="import",
        kinds={source, "python"},
        pool=DUCKDB_POOL,
        owners=["team:platform"],
        description=f"The {source} history import: what changed at the provider's API since the"
        " last import, landed under landing/import/ and loaded into raw.events (state in"
        " ops.import_state).",
    )
    def _import(
        context: dg.AssetExecutionContext, home: HomeResource, settings: SettingsResource
    ) -> dg.MaterializeResult:
        from dcicd_platform.sources import run

        platform = settings.load()
        config = platform.history_import
        scopes = config.scopes(source)
        if not scopes:
            return dg.MaterializeResult(metadata={"scopes": "none configured"})
        provider = run.providers()[source]
        token = run.token_for(provider)  # ValueError naming the variable: the run fails clearly
        now = datetime.now(UTC)
        summary = run.run_import(
            home.home,
            source,
            scopes,
            since=run.parse_since(config.since, now),
            token=token,
            api_url=config.api_url(source),
            progress=_LogProgress(context.log),
            now=now,
            commit_files=platform.path_repositories(),
        )
        for line in summary.lines():
            context.log.info(line)
        found = "\n".join(f"| {k} | {n} |" for k, n in sorted(summary.counts.items()))
        return dg.MaterializeResult(
            metadata={
                "scopes": ", ".join(scopes),
                "requests": summary.stats.requests,
                "not_modified": summary.stats.not_modified,
                "rate_limit_waits": summary.stats.rate_limit_waits,
                "loaded": summary.loaded,
                "duplicates": summary.duplicates,
                "found": dg.MetadataValue.md("| kind | objects |\n|---|---|\n" + found),
            }
        )

    return _import


import_assets = [import_asset(source) for source in SOURCES]
IMPORTS = dg.AssetSelection.groups("import")

history_import_job = dg.define_asset_job(
    "history_import",
    selection=IMPORTS,
    description="Import what changed at the providers' APIs (history_import in the"
    " configuration) and load it into raw.events.",
)


@dg.schedule(
    name="hourly_history_import",
    job=history_import_job,
    cron_schedule="10 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every hour: what the providers' APIs hold that webhooks did not bring (missed"
    " deliveries, re-runs), when history_import lists repositories, projects or services.",
)
def hourly_history_import(context: dg.ScheduleEvaluationContext):
    from dcicd_platform.config import load_config

    config = load_config().history_import
    if not any(config.scopes(source) for source in SOURCES):
        return dg.SkipReason("history_import lists no repositories, projects or services")
    return dg.RunRequest()
