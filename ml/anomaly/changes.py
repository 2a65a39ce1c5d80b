"""What changed since the detectors last ran, so each re-judges only what that can move.

A detector's verdict on an entity (a run, a job, a workflow's week, a repository's day, a
deployment) depends on that entity's rows and on a window of rows before it: the 20 runs
before a run, the two weeks before a job, the four weeks before a week, the eight same weekdays
before a day. The incremental builds keep the rows they replace and write (dbt_like_sql/
changelog.py); the detectors follow those change logs as a consumer (`ml.anomalies`), so a
changed row names the partition (a workflow, a job, a repository) and the earliest time it
touched. Each detector then re-judges, in that partition, every entity from that time on (the
entities whose window the row is in come after it), reading only the window before it; the
anomalies it re-judged are replaced, the others stand as they were, and equal what judging all
history would find (tests/test_anomaly.py holds the two equal on the sample organisation).

Everything is judged whole instead when the detectors cannot know what changed: their first
run, a change of thresholds, configuration or detector code (`fingerprint`), a model rebuilt
whole or with changes dropped before the detectors saw them (changelog.pending says so).
Predictions are stored once per run and never updated: those scored since the last run (by
`scored_at`) name their runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dbt_like_sql import changelog
from dbt_like_sql.catalog import table_exists

CONSUMER = "ml.anomalies"
STATE_DDL = """
CREATE SCHEMA IF NOT EXISTS ml;
CREATE TABLE IF NOT EXISTS ml.anomaly_state (
    fingerprint VARCHAR, predictions_scored_through TIMESTAMPTZ, ran_at TIMESTAMPTZ);
-- What each deployment was judged on (a digest of its samples and incidents): it is judged
-- again only when that changes.
CREATE TABLE IF NOT EXISTS ml.anomaly_inputs (
    kind VARCHAR, entity_key VARCHAR, digest HUGEINT, PRIMARY KEY (kind, entity_key));
"""
# The models whose change logs the detectors follow; a model read by a mart the detectors read
# is followed as far as that mart has taken it in (its own cursor), not further.
FOLLOWED = {
    "runs": ("core.pipeline_runs", None),
    "jobs": ("core.pipeline_jobs", None),
    "daily_costs": ("marts.ci_job_costs", "marts.ci_cost_daily"),
    "run_costs_runs": ("core.pipeline_runs", "marts.ci_run_costs"),
    "run_costs_jobs": ("marts.ci_job_costs", "marts.ci_run_costs"),
}
# Models the detectors read whose SQL or configuration, changed, rebuilds them whole.
VERSIONED = ("marts.ci_cost_daily", "marts.ci_run_costs")
HERE = Path(__file__).parent

# Whether an anomaly of a kind (by its entity_key) was judged again; None: all of the kind were.
Judged = Callable[[str], bool] | None


def fingerprint(conn, thresholds: dict) -> str:
    """What the verdicts depend on besides the rows: thresholds, the configuration tables, the
    versions of the marts read, and the detectors' own code."""
    parts = [json.dumps(thresholds, sort_keys=True, default=str)]
    parts += [p.read_text(encoding="utf-8") for p in sorted(HERE.glob("*.py"))]
    if table_exists(conn, "meta.model_versions"):
        parts += [
            str(r)
            for r in conn.execute(
                "SELECT model, version FROM meta.model_versions WHERE model IN"
                " (SELECT unnest($models)) ORDER BY model",
                {"models": list(VERSIONED)},
            ).fetchall()
        ]
    for (name,) in conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'config' ORDER BY 1"
    ).fetchall():
        parts.append(
            conn.execute(
                "SELECT md5(coalesce(string_agg(CAST(t AS VARCHAR), '|'"
                f" ORDER BY CAST(t AS VARCHAR)), '')) FROM config.{name} t"
            ).fetchone()[0]
        )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass
class Changes:
    """The changes since the last run: `rows[name]` a SELECT of changed rows (old and new
    images) of the FOLLOWED table, None where it cannot be known (judge whole); `whole` when
    nothing can be trusted; `predictions_since` the scored_at from which predictions are new."""

    rows: dict[str, str | None] = field(default_factory=dict)
    whole: bool = True
    predictions_since: datetime | None = None
    predictions_through: datetime | None = None
    fingerprint: str = ""
    seqs: dict[tuple[str, str], int | None] = field(default_factory=dict)

    def of(self, *names: str) -> list[str] | None:
        """The SELECTs of the named changes, or None when any is unknown (judge whole)."""
        if self.whole or any(self.rows.get(n) is None for n in names):
            return None
        return [self.rows[n] for n in names]


def consumer_of(name: str) -> str:
    """The cursor a followed change log is read with (one per mart it is followed through)."""
    _, through = FOLLOWED[name]
    return CONSUMER if through is None else f"{CONSUMER}:{through}"


def since_last_run(conn, thresholds: dict) -> Changes:
    """What changed since the detectors last ran (`commit` marks it seen once acted on)."""
    conn.execute(STATE_DDL)
    changelog.ensure_meta(conn)
    changes = Changes(fingerprint=fingerprint(conn, thresholds))
    state = conn.execute(
        "SELECT fingerprint, predictions_scored_through FROM ml.anomaly_state"
    ).fetchone()
    for name, (table, through) in FOLLOWED.items():
        up_to = None
        if through is not None:
            up_to = changelog.cursor(conn, through, table)
            if up_to is None:  # the mart will rebuild whole: follow nothing through it
                changes.rows[name] = None
                changes.seqs[consumer_of(name), table] = None
                continue
        rows, until = changelog.pending(conn, consumer_of(name), table, up_to)
        changes.rows[name] = rows
        changes.seqs[consumer_of(name), table] = until
    if table_exists(conn, "ml.build_predictions"):
        changes.predictions_through = conn.execute(
            "SELECT max(scored_at) FROM ml.build_predictions"
        ).fetchone()[0]
    if state is not None and state[0] == changes.fingerprint:
        changes.whole = False
        changes.predictions_since = state[1]
    return changes


def commit(conn, changes: Changes) -> None:
    """Remember what was acted on: the cursors, the newest prediction, the fingerprint."""
    for (consumer, table), seq in changes.seqs.items():
        changelog.consume(conn, consumer, {table: seq})
    conn.execute("DELETE FROM ml.anomaly_state")
    conn.execute(
        "INSERT INTO ml.anomaly_state VALUES (?, ?, now())",
        [changes.fingerprint, changes.predictions_through],
    )
