"""Features of a CI run, from what is known when it starts: no outcome, nothing that came later.

Per run: its repository, workflow, trigger, branch kind, attempt, hour and weekday. History
comes from the runs that *finished before this one started*, taken with an as-of join:
the workflow's rolling duration quantiles and failure rate over its last completed runs, its
flake rate, the time since its last failure, the outcome and duration of its last completed run,
the runner labels of its last completed run, and the actor's recent failure rate; the last
completed run of the same workflow on the same branch, and on the same commit (a re-run, or a
label event on a pull request), and how many runs of any workflow on that commit failed so far;
and how many of the repository's runs were still going when it started (busy runners queue).
A run's own duration and conclusion are targets, never features (tests/test_ml.py proves it
by rewriting the future and finding the features equal).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl

CATEGORICAL = ["repo", "workflow", "trigger_event", "source", "runner_labels"]
NUMERIC = [
    "on_default_branch",
    "attempt",
    "hour",
    "weekday",
    "wf_runs_before",
    "wf_duration_p50",
    "wf_duration_p90",
    "wf_duration_last5",
    "trigger_duration_p50",
    "trigger_duration_mode",
    "wf_failure_rate",
    "wf_flake_rate",
    "wf_hours_since_failure",
    "actor_failure_rate",
    "actor_runs_before",
    "wf_last_failed",
    "wf_last_duration",
    "branch_last_failed",
    "branch_duration_p50",
    "sha_wf_runs",
    "sha_wf_last_failed",
    "sha_runs",
    "sha_failures",
    "repo_in_flight",
]
FEATURES = CATEGORICAL + NUMERIC
WINDOW = 20  # completed runs of a workflow (or an actor) that its rolling figures look back on
FINISHED = ("success", "failure", "timed_out")
# A duration d is within 20% of a prediction p when p/1.2 <= d <= p/0.8: one prediction covers
# a window of this width in log seconds.
WITHIN_20PCT_SPAN = math.log(1.2) + math.log(1.25)

RUNS_SQL = """
SELECT r.run_key, r.source, r.repo, r.workflow, coalesce(r.trigger_event, 'unknown')
        AS trigger_event,
    coalesce(r.on_default_branch, false)::INT AS on_default_branch, coalesce(r.attempt, 1)
        AS attempt,
    coalesce(r.actor, 'unknown') AS actor, r.sha, r.started_at, r.finished_at, r.status,
    r.conclusion, r.duration_s, r.branch, j.runner_labels
FROM core.pipeline_runs r
LEFT JOIN (
    SELECT run_key, string_agg(DISTINCT runner_label, ',' ORDER BY runner_label) AS runner_labels
    FROM core.pipeline_jobs GROUP BY run_key
) j USING (run_key)
WHERE r.started_at IS NOT NULL
"""


def arrow_query(conn, sql: str) -> pl.DataFrame:
    """A query's rows as a Polars frame, through Arrow.

    `execute` (not `sql`) so it also works on a connection whose last result was left
    half-read; DuckDB warns that this copies the rows once, which is the price of that.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
        return pl.from_arrow(conn.execute(sql).to_arrow_table())


def load_runs(conn) -> pl.DataFrame:
    """Every started run of the warehouse, as a Polars frame."""
    return arrow_query(conn, RUNS_SQL)


def _completions(runs: pl.DataFrame) -> pl.DataFrame:
    """Runs that finished (pass or fail), in the order they finished, with what they taught."""
    done = runs.filter(
        (pl.col("status") == "completed")
        & pl.col("finished_at").is_not_null()
        & pl.col("conclusion").is_in(FINISHED)
    ).with_columns(failed=(pl.col("conclusion") != "success").cast(pl.Float64))
    # A flake: a success on a sha where this workflow failed before (a re-run that passed).
    failed_before = (
        done.filter(pl.col("failed") == 1)
        .group_by("repo", "workflow", "sha")
        .agg(first_failure=pl.col("finished_at").min())
    )
    return (
        done.join(failed_before, on=["repo", "workflow", "sha"], how="left")
        .with_columns(
            flake=(
                (pl.col("failed") == 0) & (pl.col("first_failure") < pl.col("finished_at"))
            ).fill_null(False)
        )
        .sort("finished_at", "run_key")  # ties in one order, run after run
    )


def _workflow_history(done: pl.DataFrame) -> pl.DataFrame:
    group = ["repo", "workflow"]
    return done.select(
        *group,
        "finished_at",
        wf_runs_before=pl.int_range(1, pl.len() + 1).over(group),
        wf_duration_p50=pl.col("duration_s")
        .rolling_quantile(0.5, window_size=WINDOW, min_samples=1)
        .over(group),
        wf_duration_p90=pl.col("duration_s")
        .rolling_quantile(0.9, window_size=WINDOW, min_samples=1)
        .over(group),
        wf_duration_last5=pl.col("duration_s").rolling_mean(5, min_samples=1).over(group),
        wf_failure_rate=pl.col("failed").rolling_mean(WINDOW, min_samples=1).over(group),
        wf_flake_rate=pl.col("flake")
        .cast(pl.Float64)
        .rolling_mean(WINDOW, min_samples=1)
        .over(group),
        wf_last_failure=pl.when(pl.col("failed") == 1)
        .then(pl.col("finished_at"))
        .forward_fill()
        .over(group),
        runner_labels=pl.col("runner_labels"),
        wf_last_failed=pl.col("failed"),
        wf_last_duration=pl.col("duration_s"),
    )


def _branch_history(done: pl.DataFrame) -> pl.DataFrame:
    """The workflow's last runs on the same branch (a pull request's earlier pushes)."""
    group = ["repo", "workflow", "branch"]
    return done.filter(pl.col("branch").is_not_null()).select(
        *group,
        "finished_at",
        branch_last_failed=pl.col("failed"),
        branch_duration_p50=pl.col("duration_s")
        .rolling_quantile(0.5, window_size=5, min_samples=1)
        .over(group),
    )


def _commit_history(done: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The same workflow on the same commit, and every workflow on that commit."""
    workflow = done.select(
        "repo",
        "workflow",
        "sha",
        "finished_at",
        sha_wf_runs=pl.int_range(1, pl.len() + 1).over("repo", "workflow", "sha"),
        sha_wf_last_failed=pl.col("failed"),
    )
    commit = done.select(
        "repo",
        "sha",
        "finished_at",
        sha_runs=pl.int_range(1, pl.len() + 1).over("repo", "sha"),
        sha_failures=pl.col("failed").cum_sum().over("repo", "sha"),
    )
    return workflow, commit


def _repo_finished(runs: pl.DataFrame) -> pl.DataFrame:
    """How many of the repository's runs had finished (in any way) at each finish time."""
    return (
        runs.filter(pl.col("finished_at").is_not_null())
        .sort("finished_at", "run_key")
        .select("repo", "finished_at", repo_finished=pl.int_range(1, pl.len() + 1).over("repo"))
    )


def densest_durations(windows: np.ndarray) -> np.ndarray:
    """Per row of windows (n x w seconds, NaN where a window is short): the prediction that the
    most of the row's durations lie within 20% of; NaN for an empty row.

    The measure users judge predictions by rewards the most common duration, not the median:
    a workflow that fails in seconds half the time and runs twenty minutes otherwise has a
    median between the two that is right for neither. Vectorised: n x w x w comparisons.
    """
    ordered = np.sort(np.maximum(windows, 1.0), axis=1)  # NaN sorts last
    logs = np.log(ordered)
    # ends[i, j]: how many of row i's durations are at most logs[i, j] + span (NaN never are)
    ends = (logs[:, None, :] <= logs[:, :, None] + WITHIN_20PCT_SPAN).sum(axis=2)
    covered = np.where(np.isnan(logs), -1, ends - np.arange(windows.shape[1]))
    start = covered.argmax(axis=1)
    rows = np.arange(len(windows))
    shortest = ordered[rows, start]
    longest = ordered[rows, np.maximum(ends[rows, start] - 1, start)]
    # Any p in [0.8 x the window's longest, 1.2 x its shortest] covers the whole window: take
    # the middle, away from the edges where rounding could drop a duration.
    return (0.8 * longest + 1.2 * shortest) / 2


def _trailing_mode(durations: pl.Series, window: int) -> pl.Series:
    """densest_durations over each row's last `window` values (itself included)."""
    values = durations.cast(pl.Float64).to_numpy()
    padded = np.concatenate([np.full(window - 1, np.nan), values])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)
    return pl.Series(densest_durations(windows) if len(values) else [], dtype=pl.Float64)


def _trigger_history(done: pl.DataFrame) -> pl.DataFrame:
    """The workflow's durations under the same trigger (a pull request may run fewer tests)."""
    group = ["repo", "workflow", "trigger_event"]
    return done.select(
        *group,
        "finished_at",
        trigger_duration_p50=pl.col("duration_s")
        .rolling_quantile(0.5, window_size=WINDOW, min_samples=1)
        .over(group),
        trigger_duration_mode=pl.col("duration_s")
        .map_batches(lambda s: _trailing_mode(s, WINDOW), return_dtype=pl.Float64)
        .over(group),
    )


def _actor_history(done: pl.DataFrame) -> pl.DataFrame:
    return done.select(
        "actor",
        "finished_at",
        actor_runs_before=pl.int_range(1, pl.len() + 1).over("actor"),
        actor_failure_rate=pl.col("failed").rolling_mean(WINDOW, min_samples=1).over("actor"),
    )


def build_features(runs: pl.DataFrame) -> pl.DataFrame:
    """One row per started run: run_key, started_at, the features, and the targets
    (duration_s, succeeded) where the run finished."""
    done = _completions(runs)
    if "branch" not in runs.columns:  # frames built before branches were read
        runs = runs.with_columns(branch=pl.lit(None, pl.String))
    base = (
        runs.drop("runner_labels")
        .sort("started_at", "run_key")
        .with_columns(repo_started=pl.int_range(0, pl.len()).over("repo"))
    )
    by_commit, commit = _commit_history(done)
    # Each history as it stood when the run started: its last row finished strictly before.
    histories = [
        (_workflow_history(done), ["repo", "workflow"], "wf_as_of"),
        (_trigger_history(done), ["repo", "workflow", "trigger_event"], "trigger_as_of"),
        (_actor_history(done), "actor", "actor_as_of"),
        (_branch_history(done), ["repo", "workflow", "branch"], "branch_as_of"),
        (by_commit, ["repo", "workflow", "sha"], "sha_wf_as_of"),
        (commit, ["repo", "sha"], "sha_as_of"),
        (_repo_finished(runs), "repo", "repo_as_of"),
    ]
    frame = base
    for history, by, as_of in histories:
        frame = frame.join_asof(
            history.rename({"finished_at": as_of}),
            left_on="started_at",
            right_on=as_of,
            by=by,
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,  # both sides are sorted above; polars cannot check it by group
        )
    return frame.select(
        "run_key",
        "started_at",
        *[pl.col(c).fill_null("unknown") for c in ["repo", "workflow", "trigger_event", "source"]],
        pl.col("runner_labels").fill_null("unknown"),
        "on_default_branch",
        "attempt",
        hour=pl.col("started_at").dt.hour().cast(pl.Int32),
        weekday=pl.col("started_at").dt.weekday().cast(pl.Int32),
        wf_runs_before=pl.col("wf_runs_before").fill_null(0),
        wf_duration_p50="wf_duration_p50",
        wf_duration_p90="wf_duration_p90",
        wf_duration_last5="wf_duration_last5",
        trigger_duration_p50="trigger_duration_p50",
        trigger_duration_mode="trigger_duration_mode",
        wf_failure_rate="wf_failure_rate",
        wf_flake_rate="wf_flake_rate",
        wf_hours_since_failure=(
            (pl.col("started_at") - pl.col("wf_last_failure")).dt.total_seconds() / 3600
        ),
        actor_failure_rate="actor_failure_rate",
        actor_runs_before=pl.col("actor_runs_before").fill_null(0),
        wf_last_failed="wf_last_failed",
        wf_last_duration="wf_last_duration",
        branch_last_failed="branch_last_failed",
        branch_duration_p50="branch_duration_p50",
        sha_wf_runs=pl.col("sha_wf_runs").fill_null(0),
        sha_wf_last_failed="sha_wf_last_failed",
        sha_runs=pl.col("sha_runs").fill_null(0),
        sha_failures=pl.col("sha_failures").fill_null(0.0),
        repo_in_flight=pl.col("repo_started") - pl.col("repo_finished").fill_null(0),
        duration_s=pl.when(_finished()).then(pl.col("duration_s")),
        succeeded=pl.when(_finished()).then((pl.col("conclusion") == "success").cast(pl.Int8)),
    )


def _finished() -> pl.Expr:
    return (pl.col("status") == "completed") & pl.col("conclusion").is_in(FINISHED)


def features_from_warehouse(conn) -> pl.DataFrame:
    return build_features(load_runs(conn))
