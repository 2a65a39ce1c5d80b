"""What must hold of each table, as Great Expectations expectations over the rows a query pulls.

Two kinds, because real data is never clean and a refresh must not stop for one odd row:
- **table rules** (keys never null or duplicated, a table that had rows is not emptied): a
  table that breaks one is unusable, so the check blocks everything downstream;
- **row rules** (a duration not negative, a known conclusion, ...): each row is judged, the
  rule passes while at least `mostly` of the rows keep it (`quality.mostly` in the
  configuration, per rule in `quality.rules`), and the rows that break it are listed with
  their key in `quality.row_issues`; it never blocks.

Each rule pulls only the columns it tests (and the row's key), so checks stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONCLUSIONS = ["success", "failure", "cancelled", "skipped", "timed_out", "other"]


@dataclass(frozen=True)
class Rule:
    """One expectation on one table: a name, the rows to test, the GX expectation.

    `blocking` rules protect the table as a whole; the others judge rows, whose key columns
    (`keys`, selected by `sql` too) name the offending ones.
    """

    table: str
    name: str
    description: str
    sql: str
    expectation: str
    kwargs: dict = field(default_factory=dict)
    blocking: bool = False
    keys: tuple[str, ...] = ()

    @property
    def qualified_name(self) -> str:
        """How the configuration names the rule: `<schema>.<table>.<rule>`."""
        return f"{self.table}.{self.name}"


def unique(table: str, column: str) -> Rule:
    return Rule(
        table,
        f"{column}_unique",
        f"{column} is unique",
        f"SELECT {column} FROM {table}",
        "ExpectColumnValuesToBeUnique",
        {"column": column},
        blocking=True,
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
    )


def not_emptied(table: str) -> Rule:
    """A table that had rows at its last check and has none now lost them (a broken build)."""
    return Rule(
        table,
        "not_emptied",
        "a table that had rows is not empty",
        f"SELECT count(*) AS row_count FROM {table}",
        "ExpectTableRowCountToBeBetween",
        blocking=True,
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
    )


def rate(table: str, column: str, keys: tuple[str, ...]) -> Rule:
    return Rule(
        table,
        f"{column}_within_0_1",
        f"{column} lies within [0, 1]",
        f"SELECT {', '.join(keys)}, {column} FROM {table} WHERE {column} IS NOT NULL",
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": 0, "max_value": 1},
        keys=keys,
    )


def finishes_after_start(table: str, key: str, where: str = "true", note: str = "") -> Rule:
    return Rule(
        table,
        "finished_at_after_started_at",
        f"finished_at >= started_at{note}",
        f"SELECT {key}, epoch(finished_at) AS finished, epoch(started_at) AS started FROM {table}"
        f" WHERE finished_at IS NOT NULL AND started_at IS NOT NULL AND {where}",
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {"column_A": "finished", "column_B": "started", "or_equal": True},
        keys=(key,),
    )


def conclusions(table: str, key: str) -> Rule:
    return Rule(
        table,
        "conclusion_allowed",
        f"conclusion is one of {', '.join(CONCLUSIONS)}",
        f"SELECT {key}, conclusion FROM {table} WHERE conclusion IS NOT NULL",
        "ExpectColumnValuesToBeInSet",
        {"column": "conclusion", "value_set": CONCLUSIONS},
        keys=(key,),
    )


DORA_KEYS = ("service", "grain", "period_start")
DAILY_KEYS = ("repo", "workflow", "day")

RULES: tuple[Rule, ...] = (
    unique("core.pipeline_runs", "run_key"),
    not_null("core.pipeline_runs", "run_key"),
    not_emptied("core.pipeline_runs"),
    non_negative("core.pipeline_runs", "duration_s", ("run_key",)),
    finishes_after_start("core.pipeline_runs", "run_key"),
    conclusions("core.pipeline_runs", "run_key"),
    unique("core.pipeline_jobs", "job_key"),
    not_null("core.pipeline_jobs", "job_key"),
    not_emptied("core.pipeline_jobs"),
    non_negative("core.pipeline_jobs", "duration_s", ("job_key",)),
    # GitHub reports jobs that never ran (skipped, cancelled before a runner took them)
    # finishing up to minutes before they start: a known quirk, normalized, not an error.
    finishes_after_start("core.pipeline_jobs", "job_key", "ran", " for a job that ran"),
    conclusions("core.pipeline_jobs", "job_key"),
    Rule(
        "core.commits",
        "repo_branch_sha_unique",
        "one row per commit and branch",
        "SELECT repo, branch, sha FROM core.commits",
        "ExpectCompoundColumnsToBeUnique",
        {"column_list": ["repo", "branch", "sha"]},
        blocking=True,
    ),
    unique("core.deployments", "deployment_key"),
    not_null("core.deployments", "deployment_key"),
    not_emptied("core.deployments"),
    Rule(
        "core.deployments",
        "production_deployments_have_deployed_at",
        "every successful production deployment has a deployed_at",
        "SELECT deployment_key, deployed_at FROM core.deployments"
        " WHERE is_production AND status = 'success'",
        "ExpectColumnValuesToNotBeNull",
        {"column": "deployed_at"},
        keys=("deployment_key",),
    ),
    unique("core.incidents", "incident_key"),
    not_null("core.incidents", "incident_key"),
    Rule(
        "core.incidents",
        "resolved_after_opened",
        "resolved_at >= opened_at",
        "SELECT incident_key, epoch(resolved_at) AS resolved, epoch(opened_at) AS opened"
        " FROM core.incidents WHERE resolved_at IS NOT NULL AND opened_at IS NOT NULL",
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {"column_A": "resolved", "column_B": "opened", "or_equal": True},
        keys=("incident_key",),
    ),
    non_negative("marts.deployment_changes", "lead_time_s", ("deployment_key", "sha")),
    rate("marts.dora_metrics", "change_failure_rate", DORA_KEYS),
    rate("marts.dora_summary", "change_failure_rate", ("service", "window_days")),
    rate("marts.ci_pipeline_daily", "success_rate", DAILY_KEYS),
    rate("marts.flaky_jobs", "flake_rate", ("repo", "workflow", "job_name")),
    non_negative("marts.ci_cost_daily", "cost_usd", (*DAILY_KEYS, "runner_label")),
    # The by-key marts are refreshed piecemeal: a key held twice would betray a lost delete.
    unique("marts.ci_job_costs", "job_key"),
    unique("marts.ci_run_costs", "run_key"),
    non_negative("marts.ci_run_costs", "cost_usd", ("run_key",)),
)
