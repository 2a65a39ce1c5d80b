"""The `dcicd` command (CONTRACTS.md §3). Heavy modules are imported by the commands using them."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from dcicd_platform.home import Home

# DuckDB caches what it writes: a cap keeps ingestion's memory flat however much it loads.
INGEST_MEMORY_LIMIT = "1536MB"


def _home() -> Home:
    return Home.from_env().activate()


def _fail(message: str) -> None:
    raise click.ClickException(message)


def refuse_a_bad_configuration() -> None:
    """Every command reads the configuration first: a wrong key or value stops it before it
    does anything, with one line naming the file and the key (exit 2, a usage error)."""
    from dcicd_platform.config import ConfigError, load_config

    try:
        load_config()
    except ConfigError as exc:
        first, *keys = [line.strip() for line in str(exc).splitlines() if line.strip()]
        click.echo(f"error: {' '.join([first, '; '.join(keys)]).strip()}", err=True)
        sys.exit(2)


class _ConfiguredCommand(click.Command):
    def invoke(self, ctx: click.Context):
        refuse_a_bad_configuration()  # after parsing: --help still works with a bad file
        return super().invoke(ctx)


class _Main(click.Group):
    command_class = _ConfiguredCommand


@click.group(cls=_Main)
@click.version_option(package_name="dcicd-platform")
def main() -> None:
    """dcicd: CI/CD intelligence on Dagster and DuckDB. Data lives under DCICD_HOME (./.dcicd)."""


def _plural(count: int, noun: str) -> str:
    """`1 file`, `2 files`: counts as a person writes them."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def ingest(paths: tuple[Path, ...]) -> None:
    """Land envelope files (or folders of them) and load them into the warehouse."""
    from dataclasses import replace

    from dcicd_platform.ingest.landing import land, landing_name
    from dcicd_platform.ingest.loader import LANDING_SUFFIXES, FileReport, discover, load_files
    from dcicd_platform.resources import warehouse_resource

    home = _home()
    reports: list[FileReport] = []
    landed: list[Path] = []
    # What each file is recorded under in landing/ (a copy in landing/imported/ for a file
    # from elsewhere) -> the path the user gave: what every line printed here names.
    given: dict[str, str] = {}
    for path in discover(paths):
        try:
            copy = land(path, home.landing)
        except OSError as exc:
            reports.append(
                FileReport(
                    str(path), "unreadable", error=getattr(exc, "strerror", None) or str(exc)
                )
            )
            continue
        landed.append(copy)
        given[landing_name(copy, home.landing)] = str(path)
    started = time.monotonic()
    # The same writer as the assets': it waits while a refresh holds the warehouse.
    warehouse = warehouse_resource(home.warehouse, memory_limit=INGEST_MEMORY_LIMIT)
    with warehouse.get_connection() as conn:
        loaded = load_files(
            conn,
            landed,
            name_of=lambda path: landing_name(path, home.landing),
            progress=lambda r: _print_report(replace(r, path=given.get(r.path, r.path))),
        )
        reasons = _quarantine_reasons(conn, loaded)
    reports += [replace(r, path=given.get(r.path, r.path)) for r in loaded]
    elapsed = time.monotonic() - started
    totals = {
        k: sum(getattr(r, k) for r in reports)
        for k in ("lines", "loaded", "duplicates", "quarantined")
    }
    unreadable = [r for r in reports if r.status == "unreadable"]
    for r in unreadable:
        click.echo(f"error: could not read {r.path}: {r.error}", err=True)
    click.echo(
        f"{_plural(len(reports), 'file')}, {_plural(totals['lines'], 'line')}:"
        f" {totals['loaded']} loaded, {_plural(totals['duplicates'], 'duplicate')},"
        f" {totals['quarantined']} quarantined in {elapsed:.1f} s"
        + (f"; {len(unreadable)} unreadable" if unreadable else "")
    )
    if totals["quarantined"]:
        for reason, n in reasons:
            click.echo(f"  quarantined: {_plural(n, 'line')}: {reason}")
        click.echo(
            'quarantined lines and their reasons: dcicd query "SELECT * FROM raw.quarantine"'
        )
    # A file none of whose lines could be loaded may not be an envelope file at all; its lines
    # are kept in quarantine like any other, so the load itself succeeded.
    for r in reports:
        if r.status == "loaded" and r.lines and r.lines == r.quarantined:
            click.echo(
                f"warning: nothing of {r.path} loaded: all {_plural(r.lines, 'line')} quarantined",
                err=True,
            )
    if not reports:
        click.echo(
            f"error: no envelope files ({', '.join(LANDING_SUFFIXES)}) in"
            f" {', '.join(map(str, paths))}",
            err=True,
        )
    if unreadable or not reports:
        sys.exit(1)


def _quarantine_reasons(conn, reports) -> list[tuple[str, int]]:
    """The three commonest reasons this run's files had lines quarantined, each shortened to
    one readable line, with how many lines."""
    touched = [r.path for r in reports if r.quarantined]
    if not touched:
        return []
    rows = conn.execute(
        "SELECT reason, count(*) FROM raw.quarantine WHERE landing_file IN (SELECT unnest(?))"
        " GROUP BY reason ORDER BY count(*) DESC, reason LIMIT 3",
        [touched],
    ).fetchall()
    return [(r if len(r) <= 100 else r[:99] + "…", n) for r, n in rows]


def _print_report(report) -> None:
    if report.status == "already_loaded":
        click.echo(f"{report.path}: already loaded ({report.error})")
    elif report.status == "loaded":
        click.echo(
            f"{report.path}: {_plural(report.lines, 'line')}, {report.loaded} loaded, "
            f"{_plural(report.duplicates, 'duplicate')}, {report.quarantined} quarantined"
        )


def _refresh(home: Home, job_name: str = "refresh") -> dict[str, float]:
    """Refresh in this process, saying what it materialized; returns seconds per stage."""
    from dcicd_platform import in_process

    try:
        done = in_process.run_refresh(home, job_name)
    except in_process.RunFailed as exc:
        _fail(str(exc))
    click.echo(f"{job_name}: {done.materialized} assets materialized (run {done.run_id})")
    return done.stages


def _import(source: str, scopes: list[str], since: str | None, api_url: str | None, org=None):
    """Run one history import in this process and print its summary (progress on stderr).

    What the command line leaves out comes from `history_import` in the configuration: the
    repositories (projects, services), the API's address and how far back.
    """
    from datetime import UTC, datetime

    from dcicd_platform.config import load_config
    from dcicd_platform.sources import run
    from dcicd_platform.sources.http import ApiError

    config = load_config()
    configured = config.history_import
    provider = run.providers()[source]
    api_url = api_url or configured.api_url(source)
    scopes = scopes or list(configured.scopes(source))
    try:
        start = run.parse_since(since or configured.since, datetime.now(UTC))
        token = run.token_for(provider)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    home = _home()
    try:
        if org:
            listed = run.organisation_scopes(source, org, token, api_url)
            scopes = list(dict.fromkeys([*scopes, *listed]))
        if not scopes:
            click.echo(
                f"error: name at least one to import (or list them under history_import.{source}"
                " in dcicd.yaml)",
                err=True,
            )
            sys.exit(2)
        summary = run.run_import(
            home,
            source,
            scopes,
            since=start,
            token=token,
            api_url=api_url,
            commit_files=config.path_repositories(),
        )
    except ApiError as exc:
        _fail(run.explain(exc, provider))
    for line in summary.lines():
        click.echo(line)
    if summary.loaded:
        click.echo("then: dcicd refresh --job refresh_data (or wait for the hourly refresh)")
    if summary.failures:
        sys.exit(1)


@main.group("import", cls=_Main)
def import_() -> None:
    """Bring history in from the providers' APIs (incremental: run it again to catch up)."""


_SINCE = click.option(
    "--since",
    default=None,
    help="How far back: a number of days (90d) or a date (2026-03-01). Default:"
    " history_import.since in dcicd.yaml (90d).",
)


@import_.command("github")
@click.argument("repositories", nargs=-1)
@click.option("--org", help="Every repository of this organisation too.")
@_SINCE
@click.option(
    "--api-url",
    help="GitHub Enterprise: https://HOST/api/v3 (default: history_import.github.api_url).",
)
def import_github(repositories: tuple[str, ...], org: str | None, since, api_url) -> None:
    """Import GitHub repositories (OWNER/REPO...) with token DCICD_GITHUB_TOKEN."""
    bad = [r for r in repositories if r.count("/") != 1]
    if bad:
        click.echo(f"error: {', '.join(bad)}: name repositories as OWNER/REPO", err=True)
        sys.exit(2)
    _import("github", list(repositories), since, api_url, org)


@import_.command("gitlab")
@click.argument("projects", nargs=-1)
@_SINCE
@click.option(
    "--api-url",
    help="Self-managed GitLab: https://HOST or https://HOST/api/v4 (default:"
    " history_import.gitlab.api_url).",
)
def import_gitlab(projects: tuple[str, ...], since, api_url) -> None:
    """Import GitLab projects (GROUP/PROJECT...) with token DCICD_GITLAB_TOKEN."""
    bad = [p for p in projects if "/" not in p and not p.isdigit()]
    if bad:
        click.echo(f"error: {', '.join(bad)}: name projects as GROUP/PROJECT", err=True)
        sys.exit(2)
    _import("gitlab", list(projects), since, api_url)


@import_.command("pagerduty")
@click.option("--service", "services", multiple=True, help="A service id (repeatable).")
@_SINCE
@click.option("--api-url", help="Default https://api.pagerduty.com.")
def import_pagerduty(services: tuple[str, ...], since, api_url) -> None:
    """Import PagerDuty incidents and their log entries (token DCICD_PAGERDUTY_API_TOKEN):
    of the services named (or listed under history_import.pagerduty), else of every one."""
    configured = list(services)
    if not configured:
        from dcicd_platform.config import load_config

        configured = load_config().history_import.pagerduty.services or ["*"]
    _import("pagerduty", configured, since, api_url)


ASSET_JOBS = ["refresh", "refresh_data", "score", "retrain", "watch", "weekly_report"]


@main.command()
@click.option(
    "--job",
    "job_name",
    type=click.Choice(ASSET_JOBS),
    default="refresh",
    show_default=True,
    help="refresh: every asset, training included; refresh_data: all but training (the hourly"
    " schedule); score; retrain (daily); watch: what anomalies are found in (every 5 minutes);"
    " weekly_report.",
)
def refresh(job_name: str) -> None:
    """Materialize every asset once, or the part one scheduled job materializes."""
    _refresh(_home(), job_name)


# What a statement sqlglot cannot parse may start with and still only read (DuckDB's own
# syntax; anything else, EXPORT DATABASE among them, is refused rather than guessed at).
READING_WORDS = {"SELECT", "WITH", "FROM", "VALUES", "TABLE", "DESCRIBE", "SHOW", "SUMMARIZE", "("}


def _refuse_writes(sql: str) -> None:
    """Exit with a clear error unless every statement of sql only reads: the connection is
    read-only, but a read-only connection can still write files (COPY, EXPORT) or attach."""
    import logging

    import sqlglot
    from sqlglot import exp

    if not sql.strip().strip(";").strip():
        _fail("nothing to run: give dcicd query a SELECT statement")
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its fallback notice is not ours
    try:
        statements = sqlglot.parse(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        word = sql.strip().split(maxsplit=1)[0].upper()
        if word.startswith("(") or word in READING_WORDS:
            return  # DuckDB gives the better message for a query it cannot run
        _fail(f"refused: dcicd query only reads, and {word} is not a reading statement")
    readers = (exp.Query, exp.Describe, exp.Show, exp.Pragma, exp.Summarize)
    for statement in statements:
        if statement is not None and not isinstance(statement, readers):
            word = (statement.sql(dialect="duckdb").split(maxsplit=1) or ["?"])[0].upper()
            _fail(f"refused: dcicd query only reads, and {word} is not a reading statement")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, help="Port to listen on.")
@click.option(
    "--max-body-mb", default=25.0, show_default=True, help="Largest body accepted (GitHub: 25 MB)."
)
@click.option(
    "--rotate-mb", default=64.0, show_default=True, help="Publish the landing file at this size."
)
@click.option(
    "--rotate-seconds", default=60.0, show_default=True, help="...or once it is this old."
)
def serve(
    host: str, port: int, max_body_mb: float, rotate_mb: float, rotate_seconds: float
) -> None:
    """Receive GitHub, GitLab and PagerDuty webhooks and health samples into landing/.

    Secrets come from the environment: DCICD_GITHUB_WEBHOOK_SECRET, DCICD_GITLAB_WEBHOOK_TOKEN,
    DCICD_PAGERDUTY_WEBHOOK_SECRET, DCICD_HEALTH_TOKEN; a source without one answers 503.
    The promotion gate: POST /gate with DCICD_GATE_TOKEN; GitHub's deployment protection rules
    are answered with DCICD_GITHUB_TOKEN.
    """
    from dcicd_platform.receiver.server import serve as run

    home = _home()
    click.echo(f"dcicd receiver on http://{host}:{port} -> {home.landing}", err=True)
    run(
        home.landing,
        host=host,
        port=port,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        rotate_bytes=int(rotate_mb * 1024 * 1024),
        rotate_seconds=rotate_seconds,
    )


@main.command()
@click.argument("sql")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "ndjson"]),
    default="table",
    show_default=True,
    help="table: aligned, numbers rounded to read; csv; json: one array of objects ([] for no"
    " rows); ndjson: one object per line (nothing for no rows). csv, json and ndjson keep"
    " every digit.",
)
def query(sql: str, fmt: str) -> None:
    """Run a read-only SQL query on the warehouse; statements that write are refused."""
    import duckdb

    from dcicd_platform.resources import WarehouseBusy, read_only_connection
    from dcicd_platform.screens import render

    _refuse_writes(sql)
    try:
        with read_only_connection(Home.from_env().warehouse) as conn:
            if conn.dcicd_source == "snapshot":
                click.echo(
                    "note: a refresh is writing; answering from the last published snapshot",
                    err=True,
                )
            cursor = conn.execute(sql)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchall() if columns else []
    except (FileNotFoundError, WarehouseBusy, duckdb.Error) as exc:
        _fail(str(exc))
    shown = render(columns, rows, fmt)
    if shown:  # ndjson of no rows is no line at all
        click.echo(shown)


@main.command()
def status() -> None:
    """One screen of what matters now: health score, each source's freshness, recent
    deployments, open anomalies, the automation's mode and actions today, model accuracy, cost
    against budget."""
    import duckdb

    from dcicd_platform.config import load_config
    from dcicd_platform.resources import WarehouseBusy, read_only_connection
    from dcicd_platform.status import read_status, render_status

    config = load_config()  # checked before any command
    lags = config.freshness.max_lag_minutes.model_dump()
    try:
        with read_only_connection(Home.from_env().warehouse) as conn:
            current = read_status(conn, max_lag_minutes=lags, config=config)
            note = conn.dcicd_source == "snapshot"
    except (FileNotFoundError, WarehouseBusy, duckdb.Error) as exc:
        _fail(str(exc))
    click.echo(render_status(current, click.style))
    if note:
        click.echo("(a refresh is writing: this is the last published snapshot)")


@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv", "json", "ndjson"]),
    default="text",
    show_default=True,
)
@click.option(
    "--status",
    type=click.Choice(["open", "done", "all"]),
    default="all",
    show_default=True,
    help="open: still shown by the data; done: no longer, with the saving measured.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="The first N only.")
def recommend(fmt: str, status: str, limit: int | None) -> None:
    """What to change to save CI minutes and dollars, each with its evidence and expected
    monthly saving (marts.recommendations), open ones first by dollars then minutes."""
    import duckdb

    from dcicd_platform.advice import (
        COLUMNS,
        recommendations,
        render_text,
        window_days,
        with_status,
    )
    from dcicd_platform.resources import WarehouseBusy, read_only_connection
    from dcicd_platform.screens import render

    try:
        with read_only_connection(Home.from_env().warehouse) as conn:
            every = recommendations(conn)
            days = window_days(conn)
    except (FileNotFoundError, WarehouseBusy, duckdb.Error) as exc:
        _fail(str(exc))
    if fmt == "text":
        click.echo(render_text(every, days, limit, status))
        return
    rows = with_status(every, status)
    shown = render(list(COLUMNS), [tuple(r[c] for c in COLUMNS) for r in rows[:limit]], fmt)
    if shown:  # ndjson of no rows is no line at all
        click.echo(shown)


@main.command()
def act() -> None:
    """Act once on new anomalies (what the anomaly_actions sensor does as they are found)."""
    from dcicd_platform.in_process import run_automation

    home = _home()
    done = run_automation(home)
    for job, anomaly, decision in done:
        click.echo(f"{job:15s} {decision:17s} {anomaly}")
    click.echo(f"{len(done)} action(s); every decision is in ops.actions")


def _known_anomaly(home: Home, anomaly_key: str) -> None:
    """Refuse, before any run starts, a key that names no anomaly (a typo must not end as a
    failed rollback run)."""
    import duckdb

    from dcicd_platform.reading import anomaly_known
    from dcicd_platform.resources import WarehouseBusy, read_only_connection

    try:
        with read_only_connection(home.warehouse) as conn:
            found = anomaly_known(conn, anomaly_key)
    except (FileNotFoundError, WarehouseBusy, duckdb.Error) as exc:
        _fail(str(exc))
    if not found:
        _fail(f"no anomaly {anomaly_key} in ml.anomalies: nothing to approve")


@main.command()
@click.argument("anomaly_key")
def approve(anomaly_key: str) -> None:
    """Approve the pending rollback of a critical service's deployment, and run it."""
    from dcicd_platform import in_process

    _known_anomaly(Home.from_env(), anomaly_key)
    try:
        decision = in_process.approve(_home(), anomaly_key)
    except in_process.RunFailed as exc:
        _fail(str(exc))
    click.echo(f"rollback of {anomaly_key}: {decision}")


@main.command()
@click.argument("service")
@click.option("--sha", required=True, help="The commit to promote.")
@click.option("--environment", default="production", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def gate(service: str, sha: str, environment: str, fmt: str) -> None:
    """The promotion verdict for SERVICE at --sha, with every reason: exit 0 go, 1 no-go,
    2 cannot decide. Recorded in ops.gates; the rules and the mode are `gate:` in dcicd.yaml."""
    import json

    from dcicd_platform.gate.ask import ask, flush_soon, render_text

    if not sha.strip():
        raise click.UsageError("--sha is empty: give the commit to promote")
    home = Home.from_env()
    verdict = ask(home.root, service, sha.strip(), environment, asked_by="cli")
    written = flush_soon(home.root)
    if fmt == "json":
        click.echo(json.dumps(verdict.as_dict() | {"exit_code": verdict.exit_code}, indent=2))
    else:
        click.echo(render_text(verdict))
    if written is None:
        why = "a refresh holds the warehouse" if home.warehouse.exists() else "no warehouse yet"
        click.echo(
            f"note: {why}; this verdict waits in {home.root / 'gates'} for ops.gates", err=True
        )
    sys.exit(verdict.exit_code)


def _as_typed(path: Path) -> Path:
    """A path relative to the working folder when inside it (what a user would type)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _write_interventions(home: Home, act):
    """Run act(conn) on the warehouse's writer (it waits while a refresh holds the file)."""
    import duckdb

    from dcicd_platform.resources import warehouse_resource

    if not home.warehouse.exists():
        _fail(f"no warehouse at {home.warehouse} yet: run dcicd refresh first")
    try:
        with warehouse_resource(home.warehouse).get_connection() as conn:
            return act(conn)
    except duckdb.Error as exc:
        _fail(str(exc))


@main.command()
@click.argument("key")
@click.option("--false-alarm", is_flag=True, help="It should not have been raised (or done).")
@click.option("--note", default=None, help="Why, for the audit.")
def ack(key: str, false_alarm: bool, note: str | None) -> None:
    """Acknowledge an open anomaly (ANOMALY_KEY), or mark a rollback (its action id,
    rollback:ANOMALY_KEY) a false alarm; audited in ops.interventions with who and when.
    An acknowledged anomaly leaves "Anomalies open" in dcicd status."""
    from dcicd_platform.automation.interventions import acknowledge, operator

    who = operator()

    def act(conn):
        try:
            return acknowledge(conn, key, false_alarm=false_alarm, note=note, done_by=who)
        except (LookupError, ValueError) as exc:
            _fail(str(exc.args[0]))

    done = _write_interventions(_home(), act)
    what = done.action_id or f"{done.anomaly_key} (occurrence {done.occurrence})"
    click.echo(f"acknowledged {what}" + (" as a false alarm" if false_alarm else "") + f" by {who}")


@main.command()
@click.argument(
    "capability",
    type=click.Choice(["predictions", "alerts", "rollbacks", "reruns", "model_rollbacks"]),
)
@click.argument("mode", type=click.Choice(["off", "shadow", "live", "config"]))
@click.option("--note", default=None, help="Why, for the audit.")
def switch(capability: str, mode: str, note: str | None) -> None:
    """Switch one capability off, to shadow or live at once, without a deploy or restart
    (`config`: back to automation.capabilities in the configuration). automation.mode stays
    the ceiling of alerts, rollbacks, reruns and model_rollbacks. Audited in ops.interventions."""
    from dcicd_platform.automation.interventions import operator, set_switch, switches
    from dcicd_platform.config import load_config

    who = operator()

    def act(conn):
        config = load_config()
        wanted = None if mode == "config" else mode
        done = set_switch(conn, capability, wanted, done_by=who, note=note, config=config)
        return done, switches(conn, config)[capability]

    done, now = _write_interventions(_home(), act)
    capped = f" (capped by automation.mode {now.mode})" if now.capped_by_mode else ""
    if done is None:  # nothing recorded: no intervention
        state = f"follows the configuration ({now.configured})"
        if now.switched is not None:
            state = f"is switched to {now.switched}"
        click.echo(f"{capability}: no change, it already {state}; now {now.mode}{capped}")
        return
    click.echo(f"{capability}: {now.mode}{capped}, switched by {who}")


def _add_stages(stages: dict[str, float], part: dict[str, float]) -> None:
    for stage, seconds in part.items():
        stages[stage] = stages.get(stage, 0.0) + seconds


@main.command()
@click.option("--seed", default=7, show_default=True, help="Seed of the sample organisation.")
@click.option("--days", default=90, show_default=True, help="Days of history to generate.")
def demo(seed: int, days: int) -> None:
    """Generate a sample organisation, load it, materialize everything, print a summary."""
    from dcicd_platform import in_process, screens
    from dcicd_platform.config import config_path
    from dcicd_platform.demo.generator import generate_organisation
    from dcicd_platform.demo.organisation import demo_config_yaml

    home = _home()
    started = time.monotonic()
    if config_path() is None:
        Path("dcicd.yaml").write_text(demo_config_yaml())
        click.echo("wrote the sample organisation's configuration to ./dcicd.yaml")
    else:
        click.echo(f"using the configuration in {config_path()}")
    click.echo(f"generating a sample organisation ({days} days, seed {seed}) into {home.landing}")
    files = generate_organisation(home.landing / "demo", seed=seed, days=days)
    stages = {"generate": time.monotonic() - started}
    click.echo(f"  {len(files)} landing files ({stages['generate']:.1f} s)")
    ctx = click.get_current_context()
    loading = time.monotonic()
    # As a user would name them: relative to the working folder when the home lies inside it.
    ctx.invoke(ingest, paths=tuple(_as_typed(f) for f in files))
    stages["ingest"] = time.monotonic() - loading
    click.echo("materializing every asset (tables, the build predictors, the weekly review) ...")
    _add_stages(stages, _refresh(home))
    click.echo("scoring every run with the champion models, then looking for anomalies ...")
    _add_stages(stages, _refresh(home, "score"))
    click.echo("")
    click.echo(screens.render(["table", "rows"], screens.core_counts(home), "table"))
    click.echo("")
    screens.print_dora_summary(home)
    click.echo("")
    screens.print_pull_request_cycle(home)
    click.echo("")
    screens.print_kpi_scorecard(home)
    click.echo("")
    screens.print_model_evaluation(home)
    click.echo("")
    screens.print_anomalies(home)
    click.echo("")
    screens.print_recommendations(home)
    click.echo("")
    click.echo("acting on recent anomalies in shadow mode (as the anomaly_actions sensor does) ...")
    in_process.run_automation(home)
    screens.print_actions(home)
    click.echo("")
    screens.print_gate_verdicts(home)
    click.echo("")
    click.echo("writing the weekly review again, with those decisions ...")
    _add_stages(stages, _refresh(home, "weekly_report"))
    reports = sorted(home.reports.glob("weekly-*.html"))
    if reports:
        click.echo(f"weekly review: {reports[-1]}")
    elapsed = time.monotonic() - started
    stages["start-up, runs, printing"] = elapsed - sum(stages.values())
    order = ["generate", "ingest", "marts", "training", "scoring", "anomalies", "report"]
    shown = [s for s in order if s in stages] + sorted(set(stages) - set(order))
    click.echo("stages: " + " · ".join(f"{s} {stages[s]:.1f} s" for s in shown))
    click.echo(f"demo ready in {elapsed:.0f} s. Next:")
    click.echo("  at a glance:   .venv/bin/dcicd status")
    click.echo("  open the UI:   make dev   (then http://127.0.0.1:3000)")
    click.echo('  query:         .venv/bin/dcicd query "SELECT * FROM core.deployments LIMIT 10"')


if __name__ == "__main__":
    main()
