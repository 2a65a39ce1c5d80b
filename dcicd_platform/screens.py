"""What the CLI shows besides one-line answers: rows as a table (or CSV, JSON, NDJSON), and the
demo's summary screens, each from the reading room's figures (`reading.py`) or MLflow."""

from __future__ import annotations

import csv
import io
import json
import math
from decimal import Decimal

import click

from dcicd_platform.home import Home


def readable(value: object) -> str:
    """A cell as a person reads it: floats rounded (two decimals from 1 up, three significant
    digits below), anything else as it is; None is empty."""
    if value is None:
        return ""
    if isinstance(value, Decimal) and value.is_finite():
        value = float(value)
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"
    return str(value)


def _json_value(value: object) -> object:
    """NaN and infinities as null: strict JSON has neither."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def render(columns: list[str], rows: list[tuple], fmt: str) -> str:
    """Rows as an aligned table (floats rounded to read), CSV, a JSON array of objects (`[]`
    for no rows) or NDJSON (one object a line, nothing for no rows). CSV and JSON keep every
    digit; values JSON has no type for (dates, decimals) are their text, NaN and infinities
    null. CSV lines end in a bare newline, as shell tools expect."""
    if fmt in ("json", "ndjson"):
        objects = [
            json.dumps(
                {c: _json_value(v) for c, v in zip(columns, row, strict=True)},
                default=str,
                allow_nan=False,
            )
            for row in rows
        ]
        if fmt == "ndjson":
            return "\n".join(objects)
        return "[\n" + ",\n".join(objects) + "\n]" if objects else "[]"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    cells = [[readable(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


def core_counts(home: Home) -> list[tuple[str, int]]:
    """Rows per table of raw, core and marts: the demo shows what it loaded and built."""
    from dcicd_platform.reading import table_counts
    from dcicd_platform.resources import read_only_connection

    with read_only_connection(home.warehouse) as conn:
        return table_counts(conn)


def print_dora_summary(home: Home, window_days: int = 30) -> None:
    """The DORA summary table, a line per service and the organisation, with tiers."""
    from dcicd_platform.dora_summary import COLUMNS, summary_rows
    from dcicd_platform.resources import read_only_connection

    with read_only_connection(home.warehouse) as conn:
        rows, as_of = summary_rows(conn, window_days)
    click.echo(f"DORA summary, the {window_days} days to {as_of} (DORA 2023 tiers):")
    click.echo(render(list(COLUMNS), rows, "table"))


def print_pull_request_cycle(home: Home, window_days: int = 30) -> None:
    """The median pull-request cycle and its phases per service and for the organisation, over
    the pull requests merged in the window that ends at the DORA summary's date."""
    from datetime import timedelta

    from dcicd_platform.dora_summary import human_duration
    from dcicd_platform.reading import PR_PHASES, pull_request_cycle
    from dcicd_platform.resources import read_only_connection

    with read_only_connection(home.warehouse) as conn:
        as_of = conn.execute("SELECT max(as_of) FROM marts.dora_summary").fetchone()[0]
        found = [] if as_of is None else pull_request_cycle(
            conn, as_of - timedelta(days=window_days - 1), as_of
        )  # fmt: skip
    rows = [
        (
            "all services" if r["service"] == "*" else r["service"],
            r["pull_requests"],
            r["deployed_pull_requests"],
            *(human_duration(r[f"{p}_median_s"]) for p in ("cycle", *PR_PHASES)),
        )
        for r in found
    ]
    click.echo(f"Pull-request cycle, merged in the {window_days} days to {as_of} (medians):")
    columns = ["service", "merged", "deployed", "cycle", *PR_PHASES]
    click.echo(render(columns, rows, "table") if rows else "no pull request merged")


def print_kpi_scorecard(home: Home) -> None:
    """The organisation's KPIs against their targets, and how many services and
    repositories meet theirs."""
    from dcicd_platform.reading import kpi_scorecard
    from dcicd_platform.resources import read_only_connection

    with read_only_connection(home.warehouse) as conn:
        scorecard = kpi_scorecard(conn)
    rows = [
        (r["kpi"], r["target"], rounded_as_duckdb(r["actual"]), r["goal"], r["status"])
        for r in scorecard
        if r["scope"] == "*"
    ]
    services = [r["status"] for r in scorecard if r["scope"] != "*"]
    click.echo("KPI scorecard, the organisation over the last 30 days:")
    click.echo(render(["kpi", "target", "actual", "goal", "status"], rows, "table"))
    click.echo(
        f"per service and repository: {services.count('met')} met,"
        f" {services.count('missed')} missed, {services.count('no_data')} without data"
        " (marts.kpi_scorecard)"
    )


def rounded_as_duckdb(value: float | None) -> float | None:
    """To three decimals as DuckDB's round(x, 3) does: the exact binary value, halves away
    from zero."""
    from decimal import ROUND_HALF_UP, Decimal

    if value is None:
        return None
    return float(Decimal(value).quantize(Decimal("0.001"), ROUND_HALF_UP))


def print_actions(home: Home) -> None:
    """What the automation decided, by action and decision, in the mode it ran in."""
    from dbt_like_sql.catalog import table_exists
    from dcicd_platform.reading import actions_by_decision
    from dcicd_platform.resources import read_only_connection

    with read_only_connection(home.warehouse) as conn:
        if not table_exists(conn, "ops.actions"):
            click.echo("Automation: no decision yet (no anomaly in the last day asked for one).")
            return
        mode, rows = actions_by_decision(conn)
    click.echo(f"Automation decisions (ops.actions), mode {mode}:")
    click.echo(render(["action", "decision", "count", "for example"], rows, "table"))


def print_anomalies(home: Home) -> None:
    """Open anomalies by kind and severity, and the latest critical ones."""
    from dcicd_platform.reading import open_anomaly_counts, worst_open_anomalies
    from dcicd_platform.resources import read_only_connection

    with read_only_connection(home.warehouse) as conn:
        found = open_anomaly_counts(conn)
        worst = worst_open_anomalies(conn, 5)
    severities = ("critical", "warning", "info")
    counts = [
        (kind, *(found.get((kind, s), 0) for s in severities))
        for kind in sorted({kind for kind, _ in found})
    ]
    latest = [explanation for severity, _, explanation in worst if severity == "critical"]
    click.echo("Anomalies found (ml.anomalies):")
    click.echo(render(["kind", "critical", "warning", "info"], counts, "table"))
    if latest:
        click.echo("latest critical:")
        for explanation in latest:
            click.echo(f"  - {explanation}")


def print_model_evaluation(home: Home) -> None:
    """The champions' figures on their evaluation slice (the most recent runs), with baselines."""
    from ml.registry import client

    mlflow_client = client(home.mlflow_tracking_uri, home.mlflow_artifacts)
    rows = []
    for name, metrics in [
        (
            "build_duration",
            [("within_20pct", "> 80%"), ("mae_s", ""), ("interval_coverage", "80% (P10-P90)")],
        ),
        (
            "build_outcome",
            [
                ("accuracy", "> 75%"),
                ("brier", "< baseline"),
                ("failure_recall", ">= 50%"),
                ("failure_precision", ">= 50%"),
                ("roc_auc", ""),
            ],
        ),
    ]:
        try:
            version = mlflow_client.get_model_version_by_alias(name, "champion")
        except Exception:  # no champion: the data was too small, or no model beat the baseline
            rows.append((name, "-", "no champion", "", "", ""))
            continue
        found = mlflow_client.get_run(version.run_id).data.metrics
        # A baseline serves when no trained model beats it: its figures are the baseline's.
        shown = version.version
        if version.tags.get("predictor") == "baseline":
            shown = f"{version.version} (baseline)"
        for metric, target in metrics:
            model, baseline = found.get(f"eval_{metric}"), found.get(f"baseline_{metric}")
            rows.append(
                (
                    name,
                    shown,
                    metric,
                    _figure(metric, model),
                    _figure(metric, baseline),
                    target,
                )
            )
    click.echo("Build predictors (champion in MLflow), on the most recent 20% of runs:")
    click.echo(render(["model", "version", "metric", "model", "baseline", "target"], rows, "table"))


def _figure(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric in (
        "within_20pct",
        "accuracy",
        "interval_coverage",
        "failure_recall",
        "failure_precision",
    ):
        return f"{value:.1%}"
    return f"{value:.0f} s" if metric == "mae_s" else f"{value:.3f}"


def print_gate_verdicts(home: Home, services: int = 2) -> None:
    """The promotion gate's verdict on the latest production deployment of the first services
    configured (else of the services deployed last), as `dcicd gate` prints it."""
    from dcicd_platform.gate.ask import ask, current_config, flush_soon, render_text
    from dcicd_platform.resources import read_only_connection

    configured = [s.name for s in current_config().services]
    with read_only_connection(home.warehouse) as conn:
        latest = conn.execute(
            "SELECT service, sha, environment FROM core.deployments"
            " WHERE is_production AND status = 'success'"
            " QUALIFY row_number() OVER (PARTITION BY service ORDER BY deployed_at DESC) = 1"
            " ORDER BY deployed_at DESC"
        ).fetchall()
    order = {name: i for i, name in enumerate(configured)}
    chosen = sorted(latest, key=lambda row: order.get(row[0], len(order)))[:services]
    click.echo(
        f"The promotion gate on the latest production deployment of {len(chosen)} services"
        " (dcicd gate SERVICE --sha SHA):"
    )
    for service, sha, environment in chosen:
        verdict = ask(home.root, service, sha, environment, asked_by="demo")
        click.echo(render_text(verdict))
    flush_soon(home.root)
    click.echo("every verdict is recorded in ops.gates")


def print_recommendations(home: Home, limit: int = 5) -> None:
    """The top recommendations with their monthly savings (all of them: dcicd recommend)."""
    from dcicd_platform.advice import recommendations, render_text, window_days
    from dcicd_platform.resources import read_only_connection

    with read_only_connection(home.warehouse) as conn:
        rows = recommendations(conn)
        days = window_days(conn)
    click.echo(render_text(rows, days, limit))
