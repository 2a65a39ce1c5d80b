"""What must hold of each table, as Great Expectations expectations over the rows a query pulls.

Each rule pulls only the columns it tests, so checks stay cheap on large tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONCLUSIONS = ["success", "failure", "cancelled", "skipped", "timed_out", "other"]


@dataclass(frozen=True)
class Rule:
    """One expectation on one table: a name, the rows to test, the GX expectation."""

    table: str
    name: str
    description: str
    sql: str
    expectation: str
    kwargs: dict = field(default_factory=dict)


def unique(table: str, column: str) -> Rule:
    return Rule(
        table,
        f"{column}_unique",
        f"{column} is unique",
        f"SELECT {column} FROM {table}",
        "ExpectColumnValuesToBeUnique",
        {"column": column},
    )


def not_null(table: str, column: str) -> Rule:
    return Rule(
        table,
        f"{column}_not_null",
        f"{column} is never null",
        f"SELECT {column} FROM {table}",
        "ExpectColumnValuesToNotBeNull",
        {"column": column},
    )


def non_negative(table: str, column: str) -> Rule:
    return Rule(
        table,
        f"{column}_non_negative",
        f"{column} is never negative",
        f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL",
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": 0},
    )


def rate(table: str, column: str) -> Rule:
    return Rule(
        table,
        f"{column}_within_0_1",
        f"{column} lies within [0, 1]",
        f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL",
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": 0, "max_value": 1},
    )


def finishes_after_start(table: str) -> Rule:
    return Rule(
        table,
        "finished_at_after_started_at",
        "finished_at >= started_at",
        f"SELECT epoch(finished_at) AS finished, epoch(started_at) AS started FROM {table}"
        " WHERE finished_at IS NOT NULL AND started_at IS NOT NULL",
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {"column_A": "finished", "column_B": "started", "or_equal": True},
    )


def conclusions(table: str) -> Rule:
    return Rule(
        table,
        "conclusion_allowed",
        f"conclusion is one of {', '.join(CONCLUSIONS)}",
        f"SELECT conclusion FROM {table} WHERE conclusion IS NOT NULL",
        "ExpectColumnValuesToBeInSet",
        {"column": "conclusion", "value_set": CONCLUSIONS},
    )


RULES: tuple[Rule, ...] = (
    unique("core.pipeline_runs", "run_key"),
    not_null("core.pipeline_runs", "run_key"),
    non_negative("core.pipeline_runs", "duration_s"),
    finishes_after_start("core.pipeline_runs"),
    conclusions("core.pipeline_runs"),
    unique("core.pipeline_jobs", "job_key"),
    not_null("core.pipeline_jobs", "job_key"),
    non_negative("core.pipeline_jobs", "duration_s"),
    finishes_after_start("core.pipeline_jobs"),
    conclusions("core.pipeline_jobs"),
    Rule(
        "core.commits",
        "repo_branch_sha_unique",
        "one row per commit and branch",
        "SELECT repo, branch, sha FROM core.commits",
        "ExpectCompoundColumnsToBeUnique",
        {"column_list": ["repo", "branch", "sha"]},
    ),
    unique("core.deployments", "deployment_key"),
    not_null("core.deployments", "deployment_key"),
    Rule(
        "core.deployments",
        "production_deployments_have_deployed_at",
        "every successful production deployment has a deployed_at",
        "SELECT deployed_at FROM core.deployments WHERE is_production AND status = 'success'",
        "ExpectColumnValuesToNotBeNull",
        {"column": "deployed_at"},
    ),
    unique("core.incidents", "incident_key"),
    not_null("core.incidents", "incident_key"),
    Rule(
        "core.incidents",
        "resolved_after_opened",
        "resolved_at >= opened_at",
        "SELECT epoch(resolved_at) AS resolved, epoch(opened_at) AS opened FROM core.incidents"
        " WHERE resolved_at IS NOT NULL AND opened_at IS NOT NULL",
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {"column_A": "resolved", "column_B": "opened", "or_equal": True},
    ),
    non_negative("marts.deployment_changes", "lead_time_s"),
    rate("marts.dora_metrics", "change_failure_rate"),
    rate("marts.dora_summary", "change_failure_rate"),
    rate("marts.ci_pipeline_daily", "success_rate"),
    rate("marts.flaky_jobs", "flake_rate"),
    non_negative("marts.ci_cost_daily", "cost_usd"),
    # The by-key marts are refreshed piecemeal: a key held twice would betray a lost delete.
    unique("marts.ci_job_costs", "job_key"),
    unique("marts.ci_run_costs", "run_key"),
    non_negative("marts.ci_run_costs", "cost_usd"),
)
