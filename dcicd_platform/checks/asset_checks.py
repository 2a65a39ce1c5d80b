"""The expectations as blocking Dagster asset checks, one multi-check per table.

A failing check on a core table stops the marts below it in the same run, and the UI shows the
check failed with the offending rows counted.
"""

from collections import defaultdict

import dagster as dg
from dagster_duckdb import DuckDBResource

from dcicd_platform.checks.expectations import RULES, Rule
from dcicd_platform.ingest.schema import prepare_session
from dcicd_platform.resources import DUCKDB_POOL


def validate(conn, rules: list[Rule]) -> list[dg.AssetCheckResult]:
    """Run each rule's expectation with Great Expectations on the rows it pulls."""
    import great_expectations as gx  # heavy: only in the process that runs checks

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
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        outcome = batch.validate(getattr(gx.expectations, rule.expectation)(**rule.kwargs))
        details = outcome.result or {}
        unexpected = details.get("unexpected_count", 0 if outcome.success else None)
        results.append(
            dg.AssetCheckResult(
                asset_key=rule.table.split("."),
                check_name=rule.name,
                passed=bool(outcome.success),
                severity=dg.AssetCheckSeverity.ERROR,
                description=rule.description,
                metadata={
                    "rows_checked": len(frame),
                    "offending_rows": unexpected if unexpected is not None else -1,
                    "sample": dg.MetadataValue.json(
                        [str(v) for v in (details.get("partial_unexpected_list") or [])[:10]]
                    ),
                },
            )
        )
    return results


def table_checks(table: str, rules: list[Rule]) -> dg.AssetChecksDefinition:
    key = dg.AssetKey(table.split("."))

    @dg.multi_asset_check(
        name=f"{table.replace('.', '__')}__quality",
        specs=[
            dg.AssetCheckSpec(r.name, asset=key, description=r.description, blocking=True)
            for r in rules
        ],
        pool=DUCKDB_POOL,
    )
    def _checks(warehouse: DuckDBResource):
        with warehouse.get_connection() as conn:
            prepare_session(conn)
            yield from validate(conn, rules)

    return _checks


def quality_checks() -> list[dg.AssetChecksDefinition]:
    by_table: dict[str, list[Rule]] = defaultdict(list)
    for rule in RULES:
        by_table[rule.table].append(rule)
    return [table_checks(table, rules) for table, rules in by_table.items()]
