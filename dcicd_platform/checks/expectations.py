"""What must hold of each table: Great Expectations' expectations, judged in DuckDB's SQL.

Two kinds, because real data is never clean and a refresh must not stop for one odd row:
- **table rules** (keys never null or duplicated, a table that had rows is not emptied): a
  table that breaks one is unusable, so the check blocks everything downstream;
- **row rules** (a duration not negative, a known conclusion, ...): each row is judged, the
  rule passes while at least `mostly` of the rows keep it (`quality.mostly` in the
  configuration, per rule in `quality.rules`), and the rows that break it are listed with
  their key in `quality.row_issues`; it never blocks.

A model's rules live beside its SQL, in `dbt_like_sql/<schema>/<table>.yaml`: the row's key
columns and a list of rules, each a kind below with its argument. Each rule is the Great
Expectations expectation it names (`expectation`, `kwargs`), written as SQL the warehouse runs
where the rows are: the rows it judges (`sql`: the key and the columns it tests) and, for a row
rule, the condition that marks a row breaking it (`offending`). Nothing is pulled into Python
but the count and the rows that break a rule; tests/test_quality_checks.py holds each kind's
SQL to the expectation's own verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

CONCLUSIONS = ["success", "failure", "cancelled", "skipped", "timed_out", "other"]


@dataclass(frozen=True)
class Rule:
    """One expectation on one table: a name, the rows to test, the GX expectation it is.

    `blocking` rules protect the table as a whole (`kind` unique, not_null or not_emptied, on
    `columns`); the others judge rows, whose key columns (`keys`, selected by `sql` too) name
    the offending ones, those for which the SQL condition `offending` holds.
    """

    table: str
    name: str
    description: str
    sql: str
    expectation: str
    kwargs: dict = field(default_factory=dict)
    blocking: bool = False
    keys: tuple[str, ...] = ()
    kind: str = "row"
    columns: tuple[str, ...] = ()
    offending: str = "false"

    @property
    def qualified_name(self) -> str:
        """How the configuration names the rule: `<schema>.<table>.<rule>`."""
        return f"{self.table}.{self.name}"


def unique(table: str, columns: str | list[str]) -> Rule:
    if isinstance(columns, list):
        return Rule(
            table,
            f"{'_'.join(columns)}_unique",
            f"one row per {', '.join(columns)}",
            f"SELECT {', '.join(columns)} FROM {table}",
            "ExpectCompoundColumnsToBeUnique",
            {"column_list": columns},
            blocking=True,
            kind="unique",
            columns=tuple(columns),
        )
    return Rule(
        table,
        f"{columns}_unique",
        f"{columns} is unique",
        f"SELECT {columns} FROM {table}",
        "ExpectColumnValuesToBeUnique",
        {"column": columns},
        blocking=True,
        kind="unique",
        columns=(columns,),
    )


def not_null(table: str, column: str) -> Rule:
    return Rule(
        table,
        f"{column}_not_null",
        f"{column} is never null",
        f"SELECT {column} FROM {table}",
        "ExpectColumnValuesToNotBeNull",
        {"column": column},
        blocking=True,
        kind="not_null",
        columns=(column,),
    )


def not_emptied(table: str, _: object = None) -> Rule:
    """A table that had rows at its last check and has none now lost them (a broken build)."""
    return Rule(
        table,
        "not_emptied",
        "a table that had rows is not empty",
        f"SELECT * FROM {table} LIMIT 1",  # enough to tell empty from not
        "ExpectTableRowCountToBeBetween",
        blocking=True,
        kind="not_emptied",
    )


def non_negative(table: str, column: str, keys: tuple[str, ...]) -> Rule:
    return Rule(
        table,
        f"{column}_non_negative",
        f"{column} is never negative",
        f"SELECT {', '.join(keys)}, {column} FROM {table} WHERE {column} IS NOT NULL",
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": 0},
        keys=keys,
        offending=f"NOT {column} >= 0",
    )


def within_0_1(table: str, column: str, keys: tuple[str, ...]) -> Rule:
    return Rule(
        table,
        f"{column}_within_0_1",
        f"{column} lies within [0, 1]",
        f"SELECT {', '.join(keys)}, {column} FROM {table} WHERE {column} IS NOT NULL",
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": 0, "max_value": 1},
        keys=keys,
        offending=f"NOT {column} BETWEEN 0 AND 1",
    )


def ordered(table: str, spec: dict, keys: tuple[str, ...]) -> Rule:
    """`after` is never earlier than `before` (e.g. finished_at >= started_at) where both are
    known (and `where` holds)."""
    before, after = spec["before"], spec["after"]
    note = f" {spec['note']}" if spec.get("note") else ""
    return Rule(
        table,
        spec.get("name", f"{after}_after_{before}"),
        f"{after} >= {before}{note}",
        f"SELECT {', '.join(keys)}, epoch({after}) AS {after}, epoch({before}) AS {before}"
        f" FROM {table} WHERE {after} IS NOT NULL AND {before} IS NOT NULL"
        f" AND ({spec.get('where', 'true')})",
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {"column_A": after, "column_B": before, "or_equal": True},
        keys=keys,
        offending=f"NOT {after} >= {before}",
    )


def present(table: str, spec: dict, keys: tuple[str, ...]) -> Rule:
    """`column` is never null in the rows where `where` holds."""
    column = spec["column"]
    return Rule(
        table,
        spec.get("name", f"{column}_present"),
        spec.get("description", f"{column} is known where {spec['where']}"),
        f"SELECT {', '.join(keys)}, {column} FROM {table} WHERE {spec['where']}",
        "ExpectColumnValuesToNotBeNull",
        {"column": column},
        keys=keys,
        offending=f"{column} IS NULL",
    )


def conclusion_allowed(table: str, _: object, keys: tuple[str, ...]) -> Rule:
    return Rule(
        table,
        "conclusion_allowed",
        f"conclusion is one of {', '.join(CONCLUSIONS)}",
        f"SELECT {', '.join(keys)}, conclusion FROM {table} WHERE conclusion IS NOT NULL",
        "ExpectColumnValuesToBeInSet",
        {"column": "conclusion", "value_set": CONCLUSIONS},
        keys=keys,
        offending="conclusion NOT IN (" + ", ".join(f"'{c}'" for c in CONCLUSIONS) + ")",
    )


TABLE_KINDS = {"unique": unique, "not_null": not_null, "not_emptied": not_emptied}
ROW_KINDS = {
    "non_negative": non_negative,
    "within_0_1": within_0_1,
    "ordered": ordered,
    "present": present,
    "conclusion_allowed": conclusion_allowed,
}


def rules_of(table: str, path: Path) -> list[Rule]:
    """The rules a model's YAML file (beside its SQL) lists, each `kind: argument` or `kind`.

    Raises ValueError naming the file for an unknown kind, or a row rule with no `key`.
    """
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    keys = tuple(spec.get("key") or ())
    rules = []
    for item in spec.get("rules") or []:
        kind, argument = next(iter(item.items())) if isinstance(item, dict) else (item, None)
        if kind in TABLE_KINDS:
            rules.append(TABLE_KINDS[kind](table, argument))
        elif kind in ROW_KINDS:
            if not keys:
                raise ValueError(f"{path}: the row rule {kind} needs the table's 'key' columns")
            rules.append(ROW_KINDS[kind](table, argument, keys))
        else:
            known = ", ".join(sorted([*TABLE_KINDS, *ROW_KINDS]))
            raise ValueError(f"{path}: unknown rule kind {kind!r} (one of {known})")
    return rules


def load_rules() -> tuple[Rule, ...]:
    """Every model's rules, from the `<model>.yaml` files beside the SQL models."""
    from dbt_like_sql import load_models

    return tuple(
        rule
        for model in load_models()
        if model.path.with_suffix(".yaml").exists()
        for rule in rules_of(model.table, model.path.with_suffix(".yaml"))
    )


RULES: tuple[Rule, ...] = load_rules()
