"""Build predictors against their baselines, on real history and on the sample organisation.

Loads onnx/onnx's GitHub Actions history (`../shared/datasets/gha-onnx`, as webhook envelopes:
tests/real_history.py) and the sample organisation (90 days, seed 7) into temporary
warehouses, builds the SQL models, then trains both models with the platform's own protocol
(the first 80% of finished runs by start time to learn from, the last 20% to evaluate) and
prints, per data set, model against baseline and the targets of the rollout:

- duration: share of runs predicted within 20% of their actual duration, and MAE in seconds
  (baseline: the workflow's trailing median duration), with what the history allows
  (duration_ceiling.py: the trailing mode alone, and the best constant per workflow and
  trigger chosen knowing the answers);
- outcome: Brier score, and failure recall and precision at the model's threshold (chosen on
  its early-stopping slice; the baseline, the trailing success rate, at 0.5);
- the duration's P10-P90 interval (ml/intervals.py, calibrated on the last tenth of the
  training runs): the share of evaluated durations inside it (goal 0.80) and its median
  P90 / P10; and the share of successful evaluated runs the slow-build detector would flag,
  above the interval's one-sided bound at anomalies.build_duration_level (0.99; goal about 1%),
  next to what the fixed rule flagged (1.5x the prediction; a warning at 2x).

    python benchmarks/predictors.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import duckdb  # noqa: E402
from duration_ceiling import ceilings  # noqa: E402

from dcicd_platform.config import parse_config  # noqa: E402
from dcicd_platform.demo.generator import generate_organisation  # noqa: E402
from dcicd_platform.demo.organisation import demo_config_yaml  # noqa: E402
from dcicd_platform.ingest.loader import load_files  # noqa: E402
from ml.features import build_features, load_runs  # noqa: E402
from ml.intervals import DEFAULT_LEVEL  # noqa: E402
from ml.train import predict_duration, train_duration, train_outcome  # noqa: E402
from tests import real_history  # noqa: E402
from tests.helpers import build_core  # noqa: E402

END = datetime(2026, 6, 1, tzinfo=UTC)


def onnx_runs(folder: Path):
    """onnx/onnx's runs as the warehouse holds them, through the loader and the SQL models."""
    exports = real_history.write_envelopes(folder / "onnx.ndjson", real_history.envelopes())
    with duckdb.connect(str(folder / "onnx.duckdb")) as conn:
        load_files(conn, [exports])
        build_core(conn)
        return load_runs(conn)


def sample_runs(folder: Path):
    """The sample organisation's runs (what `dcicd demo` generates, 90 days up to END)."""
    files = generate_organisation(folder / "landing", seed=7, days=90, end=END)
    with duckdb.connect(str(folder / "sample.duckdb")) as conn:
        load_files(conn, files)
        build_core(conn, parse_config(demo_config_yaml()))
        return load_runs(conn)


def report(name: str, runs) -> None:
    started = time.perf_counter()
    features = build_features(runs)
    duration, outcome = train_duration(features), train_outcome(features)
    d, db, o, ob = duration.metrics, duration.baseline, outcome.metrics, outcome.baseline
    print(
        f"\n{name}: {runs.height:,} runs, {int(d['evaluated_runs']):,} evaluated"
        f" (trained in {time.perf_counter() - started:.1f} s)"
    )
    print("| model | figure | model | baseline | target |")
    print("| --- | --- | --- | --- | --- |")
    target = "> baseline + 5 pts" + (", > 80%" if name == "sample organisation" else "")
    print(
        f"| build_duration | within 20% | {d['within_20pct']:.1%} | {db['within_20pct']:.1%}"
        f" | {target} |"
    )
    print(f"| build_duration | MAE | {d['mae_s']:,.0f} s | {db['mae_s']:,.0f} s | |")
    limits = ceilings(runs)
    print(
        f"| build_duration | chosen: reference, correction | {duration.params['reference']},"
        f" {'on' if duration.params['correction'] else 'off'} | | |"
    )
    print(
        f"| build_duration | trailing mode alone / best constant per workflow (oracle) |"
        f" {limits['trailing_mode']:.1%} / {limits['oracle_constant']:.1%} | | |"
    )
    print(f"| build_outcome | Brier | {o['brier']:.4f} | {ob['brier']:.4f} | < baseline |")
    print(
        f"| build_outcome | failure recall / precision | {o['failure_recall']:.0%} /"
        f" {o['failure_precision']:.0%} (threshold {o['threshold']:.2f})"
        f" | {ob['failure_recall']:.0%} / {ob['failure_precision']:.0%} | >= 50% / >= 50% |"
    )
    print(f"| build_outcome | AUC | {o['roc_auc']:.3f} | {ob['roc_auc']:.3f} | |")
    report_interval(duration, runs)


def report_interval(duration, runs) -> None:
    """The interval's coverage and width, and the slow-build detector's flags, on the
    evaluation slice; apart, the runs of commits with three or more flagged runs (a shared
    cause, such as a runner outage that made every workflow of a commit take hours: real slow
    builds, not false alarms), and the figures without them."""
    import numpy as np
    import polars as pl

    interval = duration.predictor.interval
    if interval is None:
        print("no interval: too few training runs to calibrate one")
        return
    evaluation = duration.evaluation.join(runs.select("run_key", "sha"), on="run_key")
    p10, p90 = interval.predict(evaluation)
    evaluation = evaluation.with_columns(
        p10=p10,
        p90=p90,
        predicted=predict_duration(duration.predictor, evaluation),
        slow_above=interval.slow_above(evaluation),
    ).with_columns(
        inside=pl.col("duration_s").is_between("p10", "p90"),
        above=(pl.col("succeeded") == 1) & (pl.col("duration_s") > pl.col("slow_above")),
        fixed=(pl.col("succeeded") == 1) & (pl.col("duration_s") >= 1.5 * pl.col("predicted")),
        doubled=(pl.col("succeeded") == 1) & (pl.col("duration_s") >= 2 * pl.col("predicted")),
    )
    evaluation = evaluation.with_columns(shared=pl.col("above").sum().over("sha") >= 3)
    rest = evaluation.filter(~pl.col("shared"))
    succeeded, rest_succeeded = (f.filter(pl.col("succeeded") == 1) for f in (evaluation, rest))
    d = duration.metrics
    print(
        f"\ninterval: calibrated on {interval.calibration_runs:,} runs"
        f" ({len(interval.slow_scores):,} successful); {succeeded.height:,} successful runs"
        f" evaluated, {evaluation['shared'].sum()} runs in commits with 3+ flagged runs"
    )

    def share(frame, column: str) -> str:
        return f"{frame[column].mean():.2%} ({frame[column].sum()})"

    print("| figure | all evaluated runs | without the commits of 3+ flagged runs | goal |")
    print("| --- | --- | --- | --- |")
    print(
        f"| P10-P90 coverage | {d['interval_coverage']:.1%} | {rest['inside'].mean():.1%} | 80% |"
    )
    width = np.median(rest["p90"] / rest["p10"])
    print(f"| median P90 / P10 | {d['interval_width']:.2f}x | {width:.2f}x | |")
    warned = succeeded.filter("above")["doubled"].sum()
    print(
        f"| successful runs flagged: above the {DEFAULT_LEVEL} bound | {share(succeeded, 'above')},"
        f" {warned} warnings | {share(rest_succeeded, 'above')} | about 1% |"
    )
    print(
        f"| successful runs flagged by the fixed rule (1.5x; warning at 2x)"
        f" | {share(succeeded, 'fixed')}, {succeeded['doubled'].sum()} warnings"
        f" | {share(rest_succeeded, 'fixed')} | |"
    )


def main() -> None:
    if not real_history.DATASET.exists():
        raise SystemExit(f"the real history is not at {real_history.DATASET}")
    with tempfile.TemporaryDirectory(prefix="dcicd-predictors-") as folder:
        report("onnx/onnx", onnx_runs(Path(folder)))
        report("sample organisation", sample_runs(Path(folder)))


if __name__ == "__main__":
    main()
