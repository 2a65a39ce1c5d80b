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
  its early-stopping slice; the baseline, the trailing success rate, at 0.5).

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
from ml.train import train_duration, train_outcome  # noqa: E402
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


def main() -> None:
    if not real_history.DATASET.exists():
        raise SystemExit(f"the real history is not at {real_history.DATASET}")
    with tempfile.TemporaryDirectory(prefix="dcicd-predictors-") as folder:
        report("onnx/onnx", onnx_runs(Path(folder)))
        report("sample organisation", sample_runs(Path(folder)))


if __name__ == "__main__":
    main()
