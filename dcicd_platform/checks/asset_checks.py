"""The expectations as Dagster asset checks, one multi-check per table.

A failing table rule (a key null or duplicated, a table emptied) blocks the assets below it in
the same run. A row rule never blocks: it passes while at least `mostly` of the rows keep it,
and every row that breaks it is listed in `quality.row_issues` with its key and values, so the
UI shows how many rows and which, and an analyst can find all of them.
"""

from __future__ import annotations

import json
from collections import defaultdict

import dagster as dg

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
"""
SAMPLE_ROWS = 10


def _jsonable(value):
    return value.item() if hasattr(value, "item") else str(value) if value is not None else None


def _previous_rows(conn, table: str) -> int:
    row = conn.execute(
        "SELECT row_count FROM quality.table_rows WHERE table_name = ?", [table]
    ).fetchone()
    return row[0] if row else 0


def _record(conn, rule: Rule, offending: list[dict]) -> None:
    """Replace the rule's listed rows in quality.row_issues with this check's."""
    conn.execute(
        "DELETE FROM quality.row_issues WHERE table_name = ? AND rule = ?", [rule.table, rule.name]
    )
    if not offending:
        return
    rows = [
        (
            rule.table,
            rule.name,
            rule.description,
            json.dumps({k: _jsonable(r.get(k)) for k in rule.keys}),
            json.dumps({k: _jsonable(v) for k, v in r.items() if k not in rule.keys}),
        )
        for r in offending
    ]
    conn.executemany(
        "INSERT INTO quality.row_issues VALUES (?, ?, ?, ?, ?, now())",
        rows,
    )


def validate(conn, rules: list[Rule], config: PlatformConfig) -> list[dg.AssetCheckResult]:
    """Run each rule's expectation with Great Expectations on the rows it pulls."""
    import great_expectations as gx  # heavy: only in the process that runs checks

    conn.execute(QUALITY_DDL)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}  # no tqdm bar per check in the output
    batch_definition = (
        context.data_sources.add_pandas("warehouse")
        .add_dataframe_asset(name="rows")
        .add_batch_definition_whole_dataframe("all")
    )
    results = []
    for rule in rules:
        frame = conn.execute(rule.sql).df()
        kwargs = dict(rule.kwargs)
        result_format: dict = {"result_format": "SUMMARY"}
        if rule.name == "not_emptied":
            # Empty is fine for a table that never had rows (a new home); not for one that had.
            previous = _previous_rows(conn, rule.table)
            kwargs["min_value"] = 1 if previous else 0
        elif not rule.blocking:
            kwargs["mostly"] = config.quality.mostly_for(rule.qualified_name)
            result_format = {
                "result_format": "COMPLETE",
                "unexpected_index_column_names": list(rule.keys),
                "return_unexpected_index_query": False,
            }
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        outcome = batch.validate(
            getattr(gx.expectations, rule.expectation)(**kwargs), result_format=result_format
        )
        details = outcome.result or {}
        unexpected = details.get("unexpected_count", 0 if outcome.success else None)
        metadata: dict = {
            "rows_checked": len(frame),
            "offending_rows": unexpected if unexpected is not None else -1,
        }
        if rule.name == "not_emptied":
            count = conn.execute(f"SELECT count(*) FROM {rule.table}").fetchone()[0]
            metadata |= {"rows_checked": count, "rows_at_last_check": previous}
            if count:
                conn.execute(
                    "INSERT OR REPLACE INTO quality.table_rows VALUES (?, ?, now())",
                    [rule.table, count],
                )
        elif not rule.blocking:
            offending = details.get("unexpected_index_list") or []
            _record(conn, rule, offending)
            metadata |= {
                "mostly": kwargs["mostly"],
                "sample": dg.MetadataValue.json(
                    [{k: _jsonable(v) for k, v in r.items()} for r in offending[:SAMPLE_ROWS]]
                ),
                "all_offending_rows": dg.MetadataValue.md(
                    f"`SELECT * FROM quality.row_issues WHERE table_name = '{rule.table}'"
                    f" AND rule = '{rule.name}'`"
                ),
            }
        else:
            metadata["sample"] = dg.MetadataValue.json(
                [str(v) for v in (details.get("partial_unexpected_list") or [])[:SAMPLE_ROWS]]
            )
        results.append(
            dg.AssetCheckResult(
                asset_key=rule.table.split("."),
                check_name=rule.name,
                passed=bool(outcome.success),
                severity=dg.AssetCheckSeverity.ERROR
                if rule.blocking
                else dg.AssetCheckSeverity.WARN,
                description=rule.description,
                metadata=metadata,
            )
        )
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
