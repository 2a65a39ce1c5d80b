"""model_accuracy: a model version whose live quality is below its floor (critical: the
champion rolls back), or above it but under `model_quality_warning_below` (a warning).

Live quality is ml.model_quality's, on completed runs that started after the version's training
cut-off: the share of runs predicted within 20% of their duration (build_duration), the
accuracy of the outcome at 0.5 (build_outcome); judged on at least 20 such runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbt_like_sql.catalog import fetch_dicts, table_exists
from ml.anomaly.store import as_frame

if TYPE_CHECKING:
    import polars as pl

    from dcicd_platform.config import AnomalyThresholds

MODEL_QUALITY_SQL = (
    "SELECT * FROM ml.model_quality WHERE runs >= 20"
    " AND (below_floor OR coalesce(within_20pct, accuracy) < $warning_below)"
)

# Every statement this detector runs (the lineage of ml/anomalies is read from these).
SQL = (MODEL_QUALITY_SQL,)


def model_accuracy(conn, t: AnomalyThresholds) -> pl.DataFrame:
    """Model versions under their floor on at least 20 live runs (none before any scoring)."""
    if not table_exists(conn, "ml.model_quality"):
        return as_frame([])
    rows = []
    warning_below = t.model_quality_warning_below
    for r in fetch_dicts(conn, MODEL_QUALITY_SQL, {"warning_below": warning_below}):
        measure = r["within_20pct"] if r["model"] == "build_duration" else r["accuracy"]
        name = "within 20%" if r["model"] == "build_duration" else "accuracy"
        under = (
            f"under its {r['floor']:.0%} floor"
            if r["below_floor"]
            else f"over its {r['floor']:.0%} floor but under {warning_below:.0%}"
        )
        rows.append(
            {
                "kind": "model_accuracy",
                "service": None,
                "entity_key": f"{r['model']}|{r['version']}",
                "detected_at": r["measured_at"],
                "observed": measure,
                "expected": r["floor"] if r["below_floor"] else warning_below,
                "score": (r["floor"] if r["below_floor"] else warning_below) - measure,
                "severity": "critical" if r["below_floor"] else "warning",
                "explanation": f"{r['model']} version {r['version']}{_which(r)}: {name}"
                f" {measure:.0%} on {r['runs']} live runs, {under}",
            }
        )
    return as_frame(rows)


def _which(r: dict) -> str:
    """' (the baseline)' for a baseline version: the floor is missed by the trailing figures
    themselves, no trained model beating them (rows from before the column: nothing)."""
    return " (the baseline)" if r.get("predictor") == "baseline" else ""
