"""The expectations as Dagster asset checks, one multi-check per table.

A failing table rule (a key null or duplicated, a table emptied) blocks the assets below it in
the same run. A row rule never blocks: it passes while at least `mostly` of the rows keep it,
and every row that breaks it is listed in `quality.row_issues` with its key and values, so the
UI shows how many rows and which, and an analyst can find all of them.

Every rule runs in the warehouse as SQL (expectations.py): a row rule is a count of the rows it
judges and of those that break it, whose keys and values go straight into quality.row_issues
(only the difference from what is listed is written). A uniqueness rule, the one that must
compare every key with every other, reads only the keys the refresh touched where the table
keeps a change log (dbt_like_sql/changelog.py: the rows its incremental builds replaced and
wrote): a key is held twice only if a build wrote it, so while the rule held at its last check
the touched keys are all it needs. It reads the whole table when it cannot know what changed
(a first check, a whole rebuild, changes dropped before it saw them), after it failed, and at
least once every WHOLE_CHECK_EVERY, which also catches rows written outside the builds.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import dagster as dg

from dbt_like_sql import changelog
from dcicd_platform.checks.expectations import RULES, Rule
from dcicd_platform.config import PlatformConfig
from dcicd_platform.resources import DUCKDB_POOL, SettingsResource, WarehouseResource

QUALITY_DDL = """
CREATE SCHEMA IF NOT EXISTS quality;
CREATE TABLE IF NOT EXISTS quality.row_issues (
    table_name VARCHAR NOT NULL, rule VARCHAR NOT NULL, description VARCHAR NOT NULL,
    row_key JSON NOT NULL, row_values JSON, checked_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS quality.table_rows (
    table_name VARCHAR PRIMARY KEY, row_count BIGINT NOT NULL, checked_at TIMESTAMPTZ NOT NULL);
-- A table rule's last verdict: whether the next check may read only the keys a refresh touched.
CREATE TABLE IF NOT EXISTS quality.rule_results (
    table_name VARCHAR NOT NULL, rule VARCHAR NOT NULL, definition VARCHAR NOT NULL,
    passed BOOLEAN NOT NULL, whole_checked_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (table_name, rule));
"""
SAMPLE_ROWS = 10
# A uniqueness rule over touched keys still reads its whole table this often.
WHOLE_CHECK_EVERY = timedelta(hours=24)


def consumer(table: str) -> str:
    """The name the checks of table follow its change log by (meta.model_cursors)."""
    return f"quality:{table}"


def _digest(rule: Rule) -> str:
    return hashlib.sha256(f"{rule.table}|{rule.columns}|{rule.sql}".encode()).hexdigest()[:16]


def _previous_rows(conn, table: str) -> int:
    row = conn.execute(
        "SELECT row_count FROM quality.table_rows WHERE table_name = ?", [table]
    ).fetchone()
    return row[0] if row else 0


def _row(columns: tuple[str, ...]) -> str:
    """The columns as one value, compared whole (a struct for several)."""
    if len(columns) == 1:
        return columns[0]
    return "struct_pack(" + ", ".join(f"{c} := {c}" for c in columns) + ")"


def _unique(conn, rule: Rule, changes: str | None) -> tuple[int, int, list[str], bool]:
    """(rows checked, offending rows, sample, read whole) of a uniqueness rule.

    As Great Expectations counts: every row whose value another row shares is offending; one
    column's nulls are not judged, several columns' rows are compared whole (nulls equal).
    """
    key = _row(rule.columns)
    where = [f"{rule.columns[0]} IS NOT NULL"] if len(rule.columns) == 1 else []
    state = conn.execute(
        "SELECT definition, passed, whole_checked_at FROM quality.rule_results"
        " WHERE table_name = ? AND rule = ?",
        [rule.table, rule.name],
    ).fetchone()
    now = datetime.now(UTC)
    whole = (
        changes is None
        or state is None
        or state[0] != _digest(rule)
        or not state[1]
        or now - state[2] >= WHOLE_CHECK_EVERY
    )
    if not whole:
        where.append(f"{key} IN (SELECT {key} FROM ({changes}))")
    duplicated = (
        f"SELECT {', '.join(rule.columns)}, count(*) AS n FROM {rule.table}"
        f" {'WHERE ' + ' AND '.join(where) if where else ''}"
        f" GROUP BY ALL HAVING count(*) > 1"
    )
    offending, *sample = conn.execute(
        f"WITH d AS ({duplicated}) SELECT coalesce(sum(n), 0)::BIGINT,"
        f" list({key} ORDER BY {key})[:{SAMPLE_ROWS}] FROM d"
    ).fetchone()
    rows = conn.execute(f"SELECT count(*) FROM {rule.table}").fetchone()[0]
    passed = offending == 0
    conn.execute(
        "INSERT OR REPLACE INTO quality.rule_results VALUES (?, ?, ?, ?, ?)",
        [
            rule.table,
            rule.name,
            _digest(rule),
            passed,
            now if whole else state[2],
        ],
    )
    return rows, offending, [str(v) for v in sample[0] or []], whole


def _not_null(conn, rule: Rule) -> tuple[int, int]:
    """(rows checked, null rows): a null is cheap to find (DuckDB's statistics know where none
    are), so the whole column is read."""
    column = rule.columns[0]
    return conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {column} IS NULL) FROM {rule.table}"
    ).fetchone()


def _columns(conn, sql: str) -> list[str]:
    return [d[0] for d in conn.execute(f"SELECT * FROM ({sql}) LIMIT 0").description]


def _json(columns: list[str] | tuple[str, ...]) -> str:
    """The columns as one JSON object (text), as quality.row_issues lists a row's key or values."""
    return "to_json(struct_pack(" + ", ".join(f"{c} := {c}" for c in columns) + "))::VARCHAR"


def _row_rule(conn, rule: Rule) -> tuple[int, int, list[dict]]:
    """(rows checked, offending rows, sample) of a row rule; quality.row_issues is left
    listing exactly the rows that break it now, each checked now."""
    names = _columns(conn, rule.sql)
    values = [c for c in names if c not in rule.keys]
    checked = conn.execute(f"SELECT count(*) FROM ({rule.sql})").fetchone()[0]
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE dcicd_offending AS"
        f" SELECT {_json(rule.keys)} AS row_key, {_json(values)} AS row_values"
        f" FROM ({rule.sql}) WHERE {rule.offending}"
    )
    params = [rule.table, rule.name]
    listed = (
        "SELECT row_key::VARCHAR AS row_key, row_values::VARCHAR AS row_values"
        " FROM quality.row_issues WHERE table_name = ? AND rule = ?"
    )
    # Unlist every copy of a (key, values) listed more often than it now breaks the rule; the
    # rest stays listed, and what is missing is added: the listing is then what breaks it.
    conn.execute(
        "DELETE FROM quality.row_issues WHERE table_name = ? AND rule = ?"
        " AND (row_key::VARCHAR, row_values::VARCHAR) IN"
        f" (SELECT (row_key, row_values) FROM ({listed} EXCEPT ALL FROM dcicd_offending))",
        params + params,
    )
    conn.execute(
        "INSERT INTO quality.row_issues"
        " SELECT ?, ?, ?, row_key::JSON, row_values::JSON, now()"
        f" FROM (FROM dcicd_offending EXCEPT ALL {listed})",
        [rule.table, rule.name, rule.description, *params],
    )
    conn.execute(
        "UPDATE quality.row_issues SET checked_at = now(), description = ?"
        " WHERE table_name = ? AND rule = ?",
        [rule.description, *params],
    )
    offending = conn.execute("SELECT count(*) FROM dcicd_offending").fetchone()[0]
    sample = [
        json.loads(k) | json.loads(v)
        for k, v in conn.execute(
            f"SELECT row_key, row_values FROM dcicd_offending ORDER BY row_key LIMIT {SAMPLE_ROWS}"
        ).fetchall()
    ]
    conn.execute("DROP TABLE dcicd_offending")
    return checked, offending, sample


def _mostly_passes(checked: int, offending: int, mostly: float) -> bool:
    """Great Expectations' verdict: vacuously true on no rows, else the share kept >= mostly."""
    return checked == 0 or (float(checked) - float(offending)) / float(checked) >= mostly


def validate(conn, rules: list[Rule], config: PlatformConfig) -> list[dg.AssetCheckResult]:
    """Judge each rule in the warehouse; one result per rule, in the order given."""
    conn.execute(QUALITY_DDL)
    changes, until = {}, {}
    for table in {r.table for r in rules if r.kind == "unique"}:
        changes[table], until[table] = changelog.pending(conn, consumer(table), table)
    results = []
    for rule in rules:
        metadata: dict = {}
        if rule.kind == "not_emptied":
            previous = _previous_rows(conn, rule.table)
            count = conn.execute(f"SELECT count(*) FROM {rule.table}").fetchone()[0]
            # Empty is fine for a table that never had rows (a new home); not for one that had.
            passed = count >= (1 if previous else 0)
            metadata |= {"rows_checked": count, "offending_rows": 0 if passed else -1}
            metadata["rows_at_last_check"] = previous
            if count:
                conn.execute(
                    "INSERT OR REPLACE INTO quality.table_rows VALUES (?, ?, now())",
                    [rule.table, count],
                )
        elif rule.kind == "unique":
            rows, offending, sample, whole = _unique(conn, rule, changes[rule.table])
            passed = offending == 0
            metadata |= {
                "rows_checked": rows,
                "offending_rows": offending,
                "read": "every key" if whole else "the keys the refresh touched",
                "sample": dg.MetadataValue.json(sample),
            }
        elif rule.kind == "not_null":
            rows, offending = _not_null(conn, rule)
            passed = offending == 0
            metadata |= {
                "rows_checked": rows,
                "offending_rows": offending,
                "sample": dg.MetadataValue.json(["None"] * min(offending, SAMPLE_ROWS)),
            }
        else:
            mostly = config.quality.mostly_for(rule.qualified_name)
            checked, offending, sample = _row_rule(conn, rule)
            passed = _mostly_passes(checked, offending, mostly)
            metadata |= {
                "rows_checked": checked,
                "offending_rows": offending,
                "mostly": mostly,
                "sample": dg.MetadataValue.json(sample),
                "all_offending_rows": dg.MetadataValue.md(
                    f"`SELECT * FROM quality.row_issues WHERE table_name = '{rule.table}'"
                    f" AND rule = '{rule.name}'`"
                ),
            }
        results.append(
            dg.AssetCheckResult(
                asset_key=rule.table.split("."),
                check_name=rule.name,
                passed=bool(passed),
                severity=dg.AssetCheckSeverity.ERROR
                if rule.blocking
                else dg.AssetCheckSeverity.WARN,
                description=rule.description,
                metadata=metadata,
            )
        )
    for table, seq in until.items():
        if seq is not None:
            changelog.consume(conn, consumer(table), {table: seq})
    return results


def table_checks(table: str, rules: list[Rule]) -> dg.AssetChecksDefinition:
    key = dg.AssetKey(table.split("."))

    @dg.multi_asset_check(
        name=f"{table.replace('.', '__')}__quality",
        specs=[
            dg.AssetCheckSpec(r.name, asset=key, description=r.description, blocking=r.blocking)
            for r in rules
        ],
        pool=DUCKDB_POOL,
    )
    def _checks(warehouse: WarehouseResource, settings: SettingsResource):
        config = settings.load()
        with warehouse.get_connection() as conn:
            yield from validate(conn, rules, config)

    return _checks


def quality_checks() -> list[dg.AssetChecksDefinition]:
    by_table: dict[str, list[Rule]] = defaultdict(list)
    for rule in RULES:
        by_table[rule.table].append(rule)
    return [table_checks(table, rules) for table, rules in by_table.items()]
