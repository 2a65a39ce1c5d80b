"""Build predictors at scale: training on 1,000,000 runs, batch scoring, single-run latency.

Generates 1,000,000 CI runs of 200 repositories (two workflows each, pull-request and push
triggers, busy hours, 10% failures) in the shape `core.pipeline_runs` gives the feature
builder, then times, in this process: the features, training each model (with early
stopping), scoring every run in one batch, and predicting one run at a time with the model
loaded (the rollout strategy's bound: P95 under 500 ms; the goal here: under 5 ms). Prints
peak memory.

    python benchmarks/ml.py [--runs 1000000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ml.features import build_features  # noqa: E402
from ml.train import predict_duration, train_duration, train_outcome  # noqa: E402


def synthetic_runs(n: int, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    repo = rng.integers(0, 200, n)
    workflow = rng.integers(0, 2, n)
    pr = rng.random(n) < 0.45
    start = datetime(2025, 1, 1, tzinfo=UTC).timestamp() + np.sort(rng.random(n)) * 365 * 86400
    hour = (start // 3600) % 24
    base = 300 + repo * 3 + workflow * 200
    duration = base * np.where(pr, 0.7, 1.0) * np.where((hour >= 13) & (hour < 18), 1.25, 1.0)
    duration *= np.exp(rng.normal(0, 0.12, n))
    failed = rng.random(n) < 0.1
    duration = np.where(failed, duration * rng.uniform(0.3, 1.0, n), duration)
    started = pl.Series(start * 1e6).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))
    return pl.DataFrame(
        {
            "run_key": [f"run-{i}" for i in range(n)],
            "source": "github",
            "repo": [f"org/svc-{r:03d}" for r in repo],
            "workflow": np.where(workflow == 0, "ci", "deploy"),
            "trigger_event": np.where(pr, "pull_request", "push"),
            "on_default_branch": (~pr).astype(np.int32),
            "attempt": 1,
            "actor": [f"dev-{a}" for a in rng.integers(0, 500, n)],
            "sha": [f"{i:040x}" for i in range(n)],
            "started_at": started,
            "finished_at": started
            + pl.Series((duration * 1e6).astype(np.int64)).cast(pl.Duration("us")),
            "status": "completed",
            "conclusion": np.where(failed, "failure", "success"),
            "duration_s": duration,
            "runner_labels": np.where(repo % 10 == 0, "macos-14", "ubuntu-latest"),
        }
    )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, fn):
    started = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - started
    print(f"  {label:44s} {seconds:7.1f} s   peak {peak_mb():6,.0f} MB", flush=True)
    return value, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"{args.runs:,} runs")
    runs, _ = timed("generate the runs", lambda: synthetic_runs(args.runs))
    features, _ = timed("features (as-of history, Polars)", lambda: build_features(runs))
    duration, _ = timed("train build_duration (LightGBM)", lambda: train_duration(features))
    outcome, _ = timed("train build_outcome (LightGBM)", lambda: train_outcome(features))
    print(
        f"  duration within 20%: {duration.metrics['within_20pct']:.1%} (baseline"
        f" {duration.baseline['within_20pct']:.1%}), rounds {duration.params['best_iteration']};"
        f" outcome accuracy {outcome.metrics['accuracy']:.1%}, AUC {outcome.metrics['roc_auc']:.3f}"
    )
    _, batch_s = timed(
        "score every run in one batch (duration)",
        lambda: predict_duration(duration.predictor, features),
    )
    print(f"  batch scoring: {features.height / batch_s:,.0f} runs/s")
    one = [features[i : i + 1] for i in range(0, features.height, features.height // 1000)][:1000]
    latencies = []
    for row in one:
        started = time.perf_counter()
        predict_duration(duration.predictor, row)
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p95 = latencies[int(len(latencies) * 0.95)] * 1000
    print(f"  one run at a time (model loaded): P50 {p50:.2f} ms, P95 {p95:.2f} ms (goal < 5 ms)")
    print(f"  peak memory: {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
