"""ml.serving: which predictor serves each model, why, and since when.

One row per model version that has served (the champion when runs were scored); `serving`
marks the one that serves now. Written by the scoring asset each time it loads the champions,
read by `dcicd status`, the weekly review and ml.model_quality, so every surface can say
"build_duration: baseline (trailing median) serving, the trained model does not beat it".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

SERVING_DDL = """
CREATE SCHEMA IF NOT EXISTS ml;
CREATE TABLE IF NOT EXISTS ml.serving (
    model_name VARCHAR, version VARCHAR, predictor VARCHAR, method VARCHAR, reason VARCHAR,
    since TIMESTAMPTZ, serving BOOLEAN, checked_at TIMESTAMPTZ,
    PRIMARY KEY (model_name, version));
"""


@dataclass
class Serving:
    """What serves one model: its champion version and why (ml/registry.py `serving`)."""

    name: str
    version: str
    predictor: str  # 'lightgbm' or 'baseline'
    method: str | None  # the baseline's ('trailing median'); None for LightGBM
    reason: str
    since: datetime  # when it became champion

    @property
    def label(self) -> str:
        from ml.baseline import describe

        return describe(self.name, self.predictor, self.method)


def record_serving(
    conn, found: dict[str, Serving | None], now: datetime | None = None
) -> list[Serving]:
    """Write what serves each model (None: nothing does, e.g. before the first training)."""
    now = now or datetime.now(UTC)
    conn.execute(SERVING_DDL)
    for name, s in found.items():
        conn.execute(
            "UPDATE ml.serving SET serving = false WHERE model_name = ? AND version <> ?",
            [name, "" if s is None else s.version],
        )
        if s is not None:
            conn.execute(
                "INSERT OR REPLACE INTO ml.serving VALUES (?, ?, ?, ?, ?, ?, true, ?)",
                [s.name, s.version, s.predictor, s.method, s.reason, s.since, now],
            )
    return [s for s in found.values() if s is not None]
