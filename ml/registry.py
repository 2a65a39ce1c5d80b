"""MLflow: every training run logged, each model registered, promoted only when it is better.

A new version gets the alias `challenger`. It becomes `champion` only if, on the same
evaluation slice, it beats both the current champion and the baseline (train.PRIMARY says by
which figure). The version it replaces is written on it (tag `previous_champion`), so a
champion whose live quality falls can be rolled back to the one before (`rollback_champion`).
A duration version logs its P10-P90 interval beside the model (`interval/`: the two quantile
boosters as LightGBM model text, the calibration as JSON; ml/intervals.py), which
`load_version` restores.

There is always an answer: when the trained model does not beat the baseline and no champion
that still beats it serves, the baseline itself (ml/baseline.py) is registered as a version of
the same model (tag `predictor=baseline`, aliases `baseline` and `champion`) and serves. A
baseline that already serves is re-used, measured on the new evaluation slice, not registered
again. Every version is tagged `predictor` (`lightgbm` or `baseline`); the champion carries
why it serves (`serving_reason`) and since when (`champion_since`); each version's description
is its model card (ml/model_card.py).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ml.baseline import ARTIFACT as BASELINE_ARTIFACT
from ml.baseline import ARTIFACT_DIR as BASELINE_DIR
from ml.baseline import KIND as BASELINE
from ml.baseline import BaselinePredictor, TrainingSummary, describe, method_of
from ml.model_card import ARTIFACT as CARD_ARTIFACT
from ml.model_card import ModelCard, evaluation_span
from ml.serving import Serving
from ml.train import Predictor, TrainedModel, beats, evaluate

EXPERIMENT = "dcicd-build-predictors"
INTERVAL = "interval"  # the run's artifact folder of the duration interval (ml/intervals.py)
CHAMPION, CHALLENGER, BASELINE_ALIAS = "champion", "challenger", "baseline"
LIGHTGBM = "lightgbm"
# Version tags: which predictor it is, why the champion serves and since when (RFC 3339).
PREDICTOR_TAG, SERVING_REASON_TAG, SINCE_TAG = "predictor", "serving_reason", "champion_since"


@dataclass
class Registration:
    name: str
    run_id: str
    version: str
    promoted: bool
    reason: str
    champion_version: str | None  # the champion after this registration (what serves)
    champion_metrics: dict[str, float] | None  # the previous champion on the same slice
    serving_predictor: str | None = None  # the champion's: 'lightgbm' or 'baseline'
    serving_reason: str | None = None  # why the champion serves
    baseline_version: str | None = None  # the baseline version that serves, if one does


def client(tracking_uri: str, artifacts: Path):
    """An MLflow client on the tracking store, with the experiment's artifacts under artifacts."""
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # A new store says at INFO that it creates its tables: nothing for the user to act on.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    # mlflow also exports the URI to this process's environment (for child processes); put the
    # environment back as the user set it, so one home's registry never leaks into another's.
    exported = {v: os.environ.get(v) for v in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    for variable, value in exported.items():
        if value is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = value
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        artifacts.mkdir(parents=True, exist_ok=True)
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts.absolute().as_uri())
    mlflow.set_experiment(EXPERIMENT)
    return mlflow.MlflowClient(tracking_uri, tracking_uri)


def load_version(name: str, version: str) -> Predictor | BaselinePredictor:
    """A registered version, ready to predict: a LightGBM booster with its category vocabulary,
    or, for a version tagged `predictor=baseline`, the baseline read from its JSON artifact;
    with the duration interval where the version logged one (none before intervals existed)."""
    import mlflow

    tracking = mlflow.MlflowClient()
    found = tracking.get_model_version(name, version)
    run_id = found.run_id
    interval = _load_interval(tracking, run_id)
    if found.tags.get(PREDICTOR_TAG) == BASELINE:
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/{BASELINE_ARTIFACT}")
        baseline = BaselinePredictor.from_json(text)
        baseline.interval = interval
        return baseline
    import mlflow.lightgbm

    categories = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/categories.json"))
    params = tracking.get_run(run_id).data.params
    fallback = params.get("fallback_s")
    return Predictor(
        mlflow.lightgbm.load_model(f"models:/{name}/{version}"),
        categories,
        None if fallback is None else float(fallback),
        reference=params.get("reference", "median"),
        correction=params.get("correction", "True") == "True",
        interval=interval,
    )


def _load_interval(tracking, run_id: str):
    """The duration interval a run logged (ml/intervals.py), or None."""
    import mlflow

    from ml.intervals import ARTIFACTS, IntervalModel

    if not tracking.list_artifacts(run_id, INTERVAL):
        return None
    return IntervalModel.from_artifacts(
        {a: mlflow.artifacts.load_text(f"runs:/{run_id}/{INTERVAL}/{a}") for a in ARTIFACTS}
    )


def predictor_kind(mlflow_client, name: str, version: str) -> str:
    """'baseline' or 'lightgbm' (a version registered before the tag existed is LightGBM)."""
    return mlflow_client.get_model_version(name, version).tags.get(PREDICTOR_TAG, LIGHTGBM)


def champion_version(mlflow_client, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow_client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def _ensure_registered_model(mlflow_client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(name)
    except MlflowException:
        mlflow_client.create_registered_model(name)


def register(mlflow_client, name: str, run_id: str, model_id: str) -> str:
    """A new version of the registered model `name`: the model a training run logged.

    What mlflow.register_model does, through the client: that prints two lines per model and
    warns that the run has no `model` artifact folder (MLflow 3 keeps logged models apart from
    the run's artifacts), none of it for the user to act on.
    """
    _ensure_registered_model(mlflow_client, name)
    version = str(
        mlflow_client.create_model_version(
            name, f"models:/{model_id}", run_id=run_id, model_id=model_id
        ).version
    )
    # The logged model's page lists the versions made from it, as register_model records it.
    mlflow_client.set_logged_model_tags(
        model_id, {"mlflow.modelVersions": json.dumps([{"name": name, "version": version}])}
    )
    return version


def log_and_register(mlflow_client, model: TrainedModel) -> Registration:
    """Log the training run, register the model, promote it if it earns it, and make sure
    something serves: the champion that still beats the baseline, else the baseline."""
    run_id, version = _log_lightgbm(mlflow_client, model)
    current = champion_version(mlflow_client, model.name)
    current_kind = None if current is None else predictor_kind(mlflow_client, model.name, current)
    champion_metrics = None
    if current is not None:  # the champion, measured on this evaluation slice
        champion = load_version(model.name, current)
        champion_metrics = evaluate(model.name, champion, model.evaluation)
    promoted, reason, serving_reason = decide(
        model, version, current, current_kind, champion_metrics
    )
    mlflow_client.set_model_version_tag(model.name, version, "promotion", reason)
    baseline_version = baseline_metrics = None
    if promoted:
        _make_champion(mlflow_client, model.name, version, reason, current)
        serving_version, serving_kind, serving_reason = version, LIGHTGBM, reason
    elif serving_reason is not None:  # the baseline serves
        baseline_version, baseline_metrics = _baseline_serves(
            mlflow_client, model, version, current, current_kind, champion_metrics, serving_reason
        )
        serving_version, serving_kind = baseline_version, BASELINE
    else:  # the champion keeps serving, for the reason it was made champion
        serving_version, serving_kind = current, current_kind
        serving_reason = serving(mlflow_client, model.name).reason
    card = ModelCard(
        model.name,
        version,
        LIGHTGBM,
        TrainingSummary.of(model.training),
        *evaluation_span(model.evaluation),
        _scores(
            model,
            version,
            current,
            current_kind,
            champion_metrics,
            baseline_version,
            baseline_metrics,
        ),
        "promoted to champion" if promoted else "not promoted",
        reason,
        model.features,
        serving=_serving_line(model.name, serving_version, serving_kind, serving_reason),
        params={k: v for k, v in model.params.items() if k != "verbose"},
    )
    write_card(mlflow_client, model.name, version, run_id, card.render())
    return Registration(
        model.name,
        run_id,
        version,
        promoted,
        reason,
        serving_version,
        champion_metrics,
        serving_kind,
        serving_reason,
        baseline_version,
    )


def decide(
    model: TrainedModel,
    version: str,
    current: str | None,
    current_kind: str | None,
    champion_metrics: dict[str, float] | None,
) -> tuple[bool, str, str | None]:
    """(promoted, reason, why the baseline serves or None when it does not).

    The trained model (registered as `version`) is promoted if it beats the baseline and the
    champion (`current`, of kind `current_kind`, with `champion_metrics` on the same slice).
    Otherwise the champion keeps serving if it is LightGBM and still beats the baseline on this
    slice; in every other case the baseline serves.
    """
    name = model.name
    baseline_serves = f"the trained model (v{version}) does not beat the baseline"
    if not beats(name, model.metrics, model.baseline):
        reason = "does not beat the baseline"
        if current_kind != LIGHTGBM:
            return False, reason, baseline_serves
        if not beats(name, champion_metrics, model.baseline):
            return (
                False,
                reason,
                f"neither the trained model (v{version}) nor champion v{current} beats the"
                " baseline",
            )
        return False, reason, None
    if current is None:
        return True, "first model that beats the baseline", None
    if beats(name, model.metrics, champion_metrics):
        if current_kind == BASELINE:
            return True, f"beats the baseline, which served as version {current}", None
        return True, f"beats champion version {current} and the baseline", None
    if current_kind == BASELINE:
        reason = f"does not beat the baseline serving as version {current} on these runs"
        return False, reason, baseline_serves
    return False, f"does not beat champion version {current}", None


def _log_lightgbm(mlflow_client, model: TrainedModel) -> tuple[str, str]:
    """The training run (params, figures, features, the booster) and its new version, tagged
    `predictor=lightgbm` and `challenger`: (run id, version)."""
    import mlflow
    import mlflow.lightgbm
    from mlflow.models import infer_signature

    example = model.predictor.frame(model.evaluation.head(5))
    with mlflow.start_run(run_name=f"{model.name}-train") as run:
        mlflow.log_params({k: v for k, v in model.params.items() if k != "verbose"})
        mlflow.log_param("trained_through", model.trained_through)
        mlflow.log_param(PREDICTOR_TAG, LIGHTGBM)
        mlflow.log_metrics({f"eval_{k}": v for k, v in model.metrics.items() if v == v})
        mlflow.log_metrics({f"baseline_{k}": v for k, v in model.baseline.items() if v == v})
        mlflow.log_text(json.dumps(model.features, indent=1), "features.json")
        mlflow.log_text(json.dumps(model.predictor.categories, indent=1), "categories.json")
        _log_interval(model.predictor.interval)
        booster = model.predictor.booster
        signature = infer_signature(example, booster.predict(example))
        logged = mlflow.lightgbm.log_model(
            booster, name="model", signature=signature, input_example=example
        )
    version = register(mlflow_client, model.name, run.info.run_id, logged.model_id)
    for tag, value in (("trained_through", model.trained_through), (PREDICTOR_TAG, LIGHTGBM)):
        mlflow_client.set_model_version_tag(model.name, version, tag, value)
    mlflow_client.set_registered_model_alias(model.name, CHALLENGER, version)
    return run.info.run_id, version


def _log_interval(interval) -> None:
    """A duration interval's artifacts into the active run (nothing for None)."""
    import mlflow

    if interval is not None:
        for artifact, text in interval.artifacts().items():
            mlflow.log_text(text, f"{INTERVAL}/{artifact}")


def _baseline_serves(
    mlflow_client,
    model: TrainedModel,
    trained_version: str,
    current: str | None,
    current_kind: str | None,
    current_metrics: dict[str, float] | None,
    reason: str,
) -> tuple[str, dict[str, float]]:
    """Make the baseline the champion: the one already serving if it is of the same kind (its
    card and reason brought up to date), else a new baseline version learnt from the training
    runs. (baseline version, its figures on the evaluation slice)."""
    import mlflow

    fresh = BaselinePredictor.from_training(model.name, model.training)
    fresh.interval = getattr(model.predictor, "interval", None)  # the interval is the same
    if current_kind == BASELINE:
        served = load_version(model.name, current)
        if served.same_kind(fresh):
            _set_serving(mlflow_client, model.name, current, reason, since=False)
            _baseline_card(
                mlflow_client, model, current, served, current_metrics, trained_version, reason
            )
            return current, current_metrics
    figures = evaluate(model.name, fresh, model.evaluation)
    with mlflow.start_run(run_name=f"{model.name}-baseline") as run:
        mlflow.log_params(
            {
                PREDICTOR_TAG: BASELINE,
                "method": fresh.method,
                "fallback": fresh.fallback,
                "trained_through": model.trained_through,
            }
        )
        # The same names as a trained model's run: its figures, which are the baseline's.
        for prefix in ("eval", "baseline"):
            mlflow.log_metrics({f"{prefix}_{k}": v for k, v in figures.items() if v == v})
        mlflow.log_text(fresh.to_json(), BASELINE_ARTIFACT)
        _log_interval(fresh.interval)
    _ensure_registered_model(mlflow_client, model.name)
    version = str(
        mlflow_client.create_model_version(
            model.name,
            f"runs:/{run.info.run_id}/{BASELINE_DIR}",
            run_id=run.info.run_id,
            tags={
                PREDICTOR_TAG: BASELINE,
                "trained_through": model.trained_through,
                "promotion": reason,
            },
        ).version
    )
    mlflow_client.set_registered_model_alias(model.name, BASELINE_ALIAS, version)
    _make_champion(mlflow_client, model.name, version, reason, current)
    _baseline_card(mlflow_client, model, version, fresh, figures, trained_version, reason)
    return version, figures


def _baseline_card(
    mlflow_client,
    model: TrainedModel,
    version: str,
    baseline: BaselinePredictor,
    figures: dict[str, float],
    trained_version: str,
    reason: str,
) -> None:
    card = ModelCard(
        model.name,
        version,
        BASELINE,
        baseline.trained_on,
        *evaluation_span(model.evaluation),
        [
            (f"this baseline (v{version})", figures),
            (f"trained model (v{trained_version})", model.metrics),
        ],
        "serves as champion",
        reason,
        [baseline.feature],
        method=baseline.method,
        notes=baseline.explain(),
    )
    run_id = mlflow_client.get_model_version(model.name, version).run_id
    write_card(mlflow_client, model.name, version, run_id, card.render())


def _scores(
    model: TrainedModel,
    version: str,
    current: str | None,
    current_kind: str | None,
    champion_metrics: dict[str, float] | None,
    baseline_version: str | None,
    baseline_metrics: dict[str, float] | None,
) -> list[tuple[str, dict[str, float]]]:
    """The columns of a trained model's card: itself, the baseline, the champion it met, and
    the baseline version that serves instead of it (as it predicts, with its own fallback)."""
    method = method_of(model.name)
    scores = [(f"this model (v{version})", model.metrics), (f"baseline ({method})", model.baseline)]
    if champion_metrics is not None:
        kind = "baseline" if current_kind == BASELINE else "champion"
        scores.append((f"{kind} v{current} (serving)", champion_metrics))
    if baseline_metrics is not None and baseline_version != current:
        scores.append((f"baseline v{baseline_version} (now serving)", baseline_metrics))
    return scores


def _serving_line(name: str, version: str | None, kind: str | None, reason: str | None) -> str:
    if version is None:
        return "nothing serves yet"
    return f"version {version}, {describe(name, kind or LIGHTGBM)}: {reason or 'champion'}"


def write_card(mlflow_client, name: str, version: str, run_id: str, text: str) -> None:
    """The card as the version's description and as `model_card.md` of its run."""
    mlflow_client.update_model_version(name, version, description=text)
    mlflow_client.log_text(run_id, text, CARD_ARTIFACT)


def _make_champion(mlflow_client, name: str, version: str, reason: str, previous: str | None):
    if previous is not None and previous != version:
        mlflow_client.set_model_version_tag(name, version, "previous_champion", previous)
    mlflow_client.set_registered_model_alias(name, CHAMPION, version)
    _set_serving(mlflow_client, name, version, reason, since=True)


def _set_serving(mlflow_client, name: str, version: str, reason: str, since: bool) -> None:
    mlflow_client.set_model_version_tag(name, version, SERVING_REASON_TAG, reason)
    if since:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        mlflow_client.set_model_version_tag(name, version, SINCE_TAG, now)


def serving(mlflow_client, name: str) -> Serving | None:
    """The champion of `name` and why it serves (None before any champion)."""
    version = champion_version(mlflow_client, name)
    if version is None:
        return None
    found = mlflow_client.get_model_version(name, version)
    tags = found.tags
    kind = tags.get(PREDICTOR_TAG, LIGHTGBM)
    since = tags.get(SINCE_TAG)
    return Serving(
        name,
        version,
        kind,
        method_of(name) if kind == BASELINE else None,
        tags.get(SERVING_REASON_TAG) or tags.get("promotion") or "champion",
        datetime.fromisoformat(since)
        if since
        else datetime.fromtimestamp(found.creation_timestamp / 1000, UTC),
    )


def rollback_champion(mlflow_client, name: str, reason: str) -> tuple[str, str]:
    """Move `champion` back to the version the current champion replaced: (from, to)."""
    current = champion_version(mlflow_client, name)
    if current is None:
        raise LookupError(f"{name} has no champion to roll back")
    previous = mlflow_client.get_model_version(name, current).tags.get("previous_champion")
    if not previous:
        raise LookupError(f"{name} version {current} replaced no earlier champion")
    mlflow_client.set_registered_model_alias(name, CHAMPION, previous)
    mlflow_client.set_model_version_tag(name, current, "rolled_back", reason)
    _set_serving(mlflow_client, name, previous, f"rolled back from v{current}: {reason}", True)
    return current, previous
