"""A model card per registered version: what it learnt from, how it scored, why it serves or not.

Markdown, written as the MLflow model version's description and as `model_card.md` of its run,
so whoever opens the registry reads the version's story without the code: the training runs
(how many, of how many repositories and workflows, from when to when), the evaluation slice,
its figures next to the baseline's (and the champion's) on that same slice, the promotion
decision and its reason, and the features it reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ml.baseline import TrainingSummary, describe
from ml.train import DURATION, OUTCOME, PRIMARY

ARTIFACT = "model_card.md"
TARGETS = {
    DURATION: "how long a CI run will take, in seconds, from what is known when it starts",
    OUTCOME: "the probability that a CI run succeeds, from what is known when it starts",
}
LABELS = {
    "within_20pct": "within 20% of the actual duration",
    "mae_s": "mean absolute error",
    "accuracy": "accuracy (success at 0.5)",
    "roc_auc": "ROC AUC",
    "brier": "Brier score",
    "failure_precision": "failure precision",
    "failure_recall": "failure recall",
    "threshold": "failure threshold",
    "evaluated_runs": "runs evaluated",
}
PERCENT = {"within_20pct", "accuracy", "failure_precision", "failure_recall"}


@dataclass
class ModelCard:
    """Everything a card says. scores: (column heading, figures on the evaluation slice), the
    version's own first; the figures are train.duration_metrics / outcome_metrics dicts."""

    name: str
    version: str
    predictor: str  # 'lightgbm' or 'baseline'
    trained_on: TrainingSummary
    evaluation_runs: int
    evaluation_first: str | None
    evaluation_last: str | None
    scores: list[tuple[str, dict[str, float]]]
    decision: str  # e.g. "promoted to champion", "not promoted", "serves as champion"
    reason: str
    features: list[str]
    serving: str | None = None  # what serves the model after this decision, and why
    method: str | None = None  # the baseline's method ('trailing median')
    notes: list[str] = field(default_factory=list)  # lines of its own section (the fallback)
    params: dict = field(default_factory=dict)

    def render(self) -> str:
        kind = describe(self.name, self.predictor, self.method)
        metric, better = PRIMARY[self.name]
        t = self.trained_on
        lines = [
            f"# {self.name} version {self.version}: {kind}",
            "",
            f"Predicts {TARGETS.get(self.name, self.name)}.",
            "",
            "## Trained on",
            "",
        ]
        if t.runs is None:
            lines.append("- the training runs were not recorded")
        else:
            lines += [
                f"- {t.runs:,} finished runs of {t.workflows:,} workflows in {t.repositories:,}"
                " repositories",
                f"- started from {_when(t.first_start)} to {_when(t.last_start)}",
            ]
        lines += [
            "",
            "## Evaluation",
            "",
            f"On the {self.evaluation_runs:,} most recent finished runs, started from"
            f" {_when(self.evaluation_first)} to {_when(self.evaluation_last)}, none of them"
            " learnt from. The decision is by"
            f" {LABELS.get(metric, metric)} ({'higher' if better is max else 'lower'} is"
            " better).",
            "",
            "| metric | " + " | ".join(heading for heading, _ in self.scores) + " |",
            "|---|" + "---:|" * len(self.scores),
        ]
        keys = list(dict.fromkeys(k for _, figures in self.scores for k in figures))
        for key in keys:
            shown = [_figure(key, figures.get(key)) for _, figures in self.scores]
            label = LABELS.get(key, key)
            lines.append(f"| {label} | " + " | ".join(shown) + " |")
        lines += [
            "",
            "## Decision",
            "",
            f"{self.decision[:1].upper()}{self.decision[1:]}: {self.reason}.",
        ]
        if self.serving:
            lines += ["", f"Serving now: {self.serving}."]
        lines.append("")
        if self.notes:
            lines += ["## How it predicts", "", *[f"- {n}" for n in self.notes], ""]
        lines += ["## Features", "", ", ".join(f"`{f}`" for f in self.features), ""]
        if self.params:
            shown = ", ".join(f"{k}={v}" for k, v in self.params.items() if k != "verbose")
            lines += ["## Parameters", "", shown, ""]
        return "\n".join(lines)


def _when(text: str | None) -> str:
    if not text:
        return "-"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _figure(key: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key in PERCENT:
        return f"{100 * value:.1f}%"
    if key == "mae_s":
        return f"{value:,.0f} s"
    if key == "evaluated_runs":
        return f"{value:,.0f}"
    return f"{value:.3f}"


def evaluation_span(evaluation) -> tuple[int, str | None, str | None]:
    """The slice's size and its first and last start time (RFC 3339)."""
    if evaluation is None or evaluation.height == 0:
        return 0, None, None
    started = evaluation["started_at"]
    return evaluation.height, started.min().isoformat(), started.max().isoformat()
