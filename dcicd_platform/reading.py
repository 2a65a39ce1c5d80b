"""The reading room: the warehouse's figures that people see, each read by one query whichever
screen shows it (`dcicd status`, the demo's summary, the weekly review, the dora_summary asset's
metadata), so two screens cannot disagree on a figure.

Plain rows, no presentation: each screen formats them its own way. A reader of a table that
only a later step creates checks that it exists first.
"""

from __future__ import annotations

from datetime import date

from dbt_like_sql.catalog import fetch_dicts, table_exists

# The four DORA tiers of a marts.dora_summary row, in the order every screen shows them.
TIERS = ("deployment_frequency_tier", "lead_time_tier", "change_failure_tier", "restore_tier")

# The order anomalies are listed in: the worst first, then the latest.
BY_SEVERITY = "CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END"


def reporting_zone(conn) -> str:
    """The reporting time zone the marts were built in (config.reporting), 'UTC' before the
    first refresh wrote it: a screen reckons days as the tables it shows do."""
    if not table_exists(conn, "config.reporting"):
        return "UTC"
    rows = conn.execute("SELECT time_zone FROM config.reporting").fetchall()
    return rows[0][0] if rows else "UTC"


def dora_summary(conn, window_days: int = 30) -> list[dict]:
    """marts.dora_summary for one window: a row per service, then the organisation ('*')."""
    return fetch_dicts(
        conn,
        "SELECT * FROM marts.dora_summary WHERE window_days = ? ORDER BY service = '*', service",
        [window_days],
    )


def kpi_scorecard(conn) -> list[dict]:
    """marts.kpi_scorecard: the organisation's rows (scope '*') first, by KPI, then each
    service's and repository's."""
    return fetch_dicts(
        conn,
        "SELECT kpi, scope, target, actual, goal, status FROM marts.kpi_scorecard"
        " ORDER BY scope <> '*', kpi, scope",
    )


def ci_weekly(conn, first: date, last: date) -> list[dict]:
    """CI by ISO week, for the runs started from first to last (days of the reporting time
    zone): completed runs, the duration P50 and P95 in minutes of those that ran, the success
    rate of those that ended."""
    return fetch_dicts(
        conn,
        "SELECT dcicd_period_start('week', started_at, $zone) AS week_start, count(*) AS runs,"
        " quantile_cont(duration_s, 0.5) FILTER (WHERE ran) / 60 AS p50_minutes,"
        " quantile_cont(duration_s, 0.95) FILTER (WHERE ran) / 60 AS p95_minutes,"
        " count(*) FILTER (WHERE conclusion = 'success') / nullif(count(*) FILTER"
        " (WHERE conclusion IN ('success', 'failure', 'timed_out')), 0) AS success_rate"
        " FROM core.pipeline_runs WHERE status = 'completed'"
        " AND dcicd_local_day(started_at, $zone) BETWEEN $first AND $last"
        " GROUP BY 1 ORDER BY 1",
        {"zone": reporting_zone(conn), "first": first, "last": last},
    )


def unacknowledged_condition(conn) -> str:
    """The condition on ml.anomalies of an occurrence no operator acknowledged (`dcicd ack`)."""
    from dcicd_platform.automation.interventions import unacknowledged_sql

    return unacknowledged_sql(conn)


def open_anomaly_counts(conn) -> dict[tuple[str, str], int]:
    """How many anomalies are open (not cleared, not acknowledged), by (kind, severity)."""
    return {
        (kind, severity): n
        for kind, severity, n in conn.execute(
            "SELECT kind, severity, count(*) FROM ml.anomalies WHERE cleared_at IS NULL"
            f" AND {unacknowledged_condition(conn)} GROUP BY ALL"
        ).fetchall()
    }


def acknowledged_open_anomalies(conn) -> int:
    """How many anomalies not cleared an operator acknowledged (left out of the open ones)."""
    return conn.execute(
        "SELECT count(*) FROM ml.anomalies WHERE cleared_at IS NULL"
        f" AND NOT ({unacknowledged_condition(conn)})"
    ).fetchone()[0]


def worst_open_anomalies(conn, limit: int) -> list[tuple[str, str, str]]:
    """The open (not acknowledged) anomalies most in need of a look, (severity, kind,
    explanation): critical first, then warning, then info, the latest first within each."""
    return conn.execute(
        "SELECT severity, kind, explanation FROM ml.anomalies WHERE cleared_at IS NULL"
        f" AND {unacknowledged_condition(conn)} ORDER BY {BY_SEVERITY}, detected_at DESC LIMIT ?",
        [limit],
    ).fetchall()


def anomaly_known(conn, anomaly_key: str) -> bool:
    """Whether ml.anomalies holds the anomaly (a typo must not end as a failed run)."""
    return table_exists(conn, "ml.anomalies") and bool(
        conn.execute(
            "SELECT count(*) FROM ml.anomalies WHERE anomaly_key = ?", [anomaly_key]
        ).fetchone()[0]
    )


def actions_by_decision(conn) -> tuple[str | None, list[tuple]]:
    """The automation's decisions (ops.actions) counted by action and decision, each with an
    example reason, and the mode they were taken in."""
    rows = conn.execute(
        "SELECT kind, decision, count(*), any_value(reason) FROM ops.actions"
        " GROUP BY kind, decision ORDER BY kind, decision"
    ).fetchall()
    mode = conn.execute("SELECT any_value(mode) FROM ops.actions").fetchone()[0]
    return mode, rows


def table_counts(conn) -> list[tuple[str, int]]:
    """Rows in each table of the raw, core and marts layers."""
    tables = conn.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables()"
        " WHERE schema_name IN ('raw', 'core', 'marts') ORDER BY 1"
    ).fetchall()
    return [(t, conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for (t,) in tables]


# The phases of a pull request's cycle (marts.pull_request_cycle), in the order they happen.
PR_PHASES = ("coding", "pickup", "review", "deploy")


def pull_request_cycle(conn, first: date, last: date) -> list[dict]:
    """The pull requests merged from first to last (days of the reporting time zone, inclusive)
    per service, then the
    organisation ('*'): how many, how many were deployed, and the continuous median of each
    phase and of the whole cycle in seconds (None where none has it), as
    marts.pull_request_cycle_summary computes them for a calendar period."""
    medians = ", ".join(f"median({p}_s) AS {p}_median_s" for p in (*PR_PHASES, "cycle"))
    return fetch_dicts(
        conn,
        f"SELECT coalesce(service, '*') AS service, count(*) AS pull_requests,"
        f" count(deployed_at) AS deployed_pull_requests, {medians}"
        " FROM marts.pull_request_cycle WHERE dcicd_local_day(merged_at,"
        " (SELECT time_zone FROM config.reporting)) BETWEEN ? AND ?"
        " GROUP BY GROUPING SETS ((service), ()) ORDER BY grouping(service), 1",
        [first, last],
    )
