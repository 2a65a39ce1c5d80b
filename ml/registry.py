"""MLflow: every training run logged, each model registered, promoted only when it is better.

A new version gets the alias `challenger`. It becomes `champion` only if, on the same
evaluation slice, it beats both the current champion and the baseline (train.PRIMARY says by
which figure). The version it replaces is written on it (tag `previous_champion`), so a
champion whose live quality falls can be rolled back to the one before (`rollback_champion`).
A duration version logs its P10-P90 interval beside the model (`interval/`: the two quantile
boosters as LightGBM model text, the calibration as JSON; ml/intervals.py), which
`load_version` restores.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ml.train import Predictor, TrainedModel, beats, evaluate

EXPERIMENT = "dcicd-build-predictors"
INTERVAL = "interval"  # the run's artifact folder of the duration interval (ml/intervals.py)
CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass
class Registration:
    name: str
    run_id: str
    version: str
    promoted: bool
    reason: str
    champion_version: str | None  # the champion after this registration
    champion_metrics: dict[str, float] | None  # the previous champion on the same slice


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


def load_version(name: str, version: str) -> Predictor:
    """A registered version, ready to predict: its booster and its category vocabulary, and its
    duration interval where the version logged one (none before intervals existed)."""
    import mlflow
    import mlflow.lightgbm

    from ml.intervals import ARTIFACTS, IntervalModel

    tracking = mlflow.MlflowClient()
    run_id = tracking.get_model_version(name, version).run_id
    categories = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/categories.json"))
    params = tracking.get_run(run_id).data.params
    fallback = params.get("fallback_s")
    interval = None
    if tracking.list_artifacts(run_id, INTERVAL):
        interval = IntervalModel.from_artifacts(
            {a: mlflow.artifacts.load_text(f"runs:/{run_id}/{INTERVAL}/{a}") for a in ARTIFACTS}
        )
    return Predictor(
        mlflow.lightgbm.load_model(f"models:/{name}/{version}"),
        categories,
        None if fallback is None else float(fallback),
        reference=params.get("reference", "median"),
        correction=params.get("correction", "True") == "True",
        interval=interval,
    )


def champion_version(mlflow_client, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow_client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def register(mlflow_client, name: str, run_id: str, model_id: str) -> str:
    """A new version of the registered model `name`: the model a training run logged.

    What mlflow.register_model does, through the client: that prints two lines per model and
    warns that the run has no `model` artifact folder (MLflow 3 keeps logged models apart from
    the run's artifacts), none of it for the user to act on.
    """
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(name)
    except MlflowException:
        mlflow_client.create_registered_model(name)
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
    """Log the training run, register the model, and promote it if it earns it."""
    import mlflow
    import mlflow.lightgbm
    from mlflow.models import infer_signature

    example = model.predictor.frame(model.evaluation.head(5))
    with mlflow.start_run(run_name=f"{model.name}-train") as run:
        mlflow.log_params({k: v for k, v in model.params.items() if k != "verbose"})
        mlflow.log_param("trained_through", model.trained_through)
        mlflow.log_metrics({f"eval_{k}": v for k, v in model.metrics.items() if v == v})
        mlflow.log_metrics({f"baseline_{k}": v for k, v in model.baseline.items() if v == v})
        mlflow.log_text(json.dumps(model.features, indent=1), "features.json")
        mlflow.log_text(json.dumps(model.predictor.categories, indent=1), "categories.json")
        if model.predictor.interval is not None:
            for artifact, text in model.predictor.interval.artifacts().items():
                mlflow.log_text(text, f"{INTERVAL}/{artifact}")
        booster = model.predictor.booster
        signature = infer_signature(example, booster.predict(example))
        logged = mlflow.lightgbm.log_model(
            booster, name="model", signature=signature, input_example=example
        )
    version = register(mlflow_client, model.name, run.info.run_id, logged.model_id)
    mlflow_client.set_model_version_tag(
        model.name, version, "trained_through", model.trained_through
    )
    mlflow_client.set_registered_model_alias(model.name, CHALLENGER, version)
    current = champion_version(mlflow_client, model.name)
    champion_metrics = None
    if not beats(model.name, model.metrics, model.baseline):
        promoted, reason = False, "does not beat the baseline"
    elif current is None:
        promoted, reason = True, "first model that beats the baseline"
    else:
        champion_metrics = evaluate(model.name, load_version(model.name, current), model.evaluation)
        if beats(model.name, model.metrics, champion_metrics):
            promoted, reason = True, f"beats champion version {current} and the baseline"
        else:
            promoted, reason = False, f"does not beat champion version {current}"
    if promoted:
        if current is not None:
            mlflow_client.set_model_version_tag(model.name, version, "previous_champion", current)
        mlflow_client.set_registered_model_alias(model.name, CHAMPION, version)
    mlflow_client.set_model_version_tag(model.name, version, "promotion", reason)
    return Registration(
        model.name,
        run.info.run_id,
        version,
        promoted,
        reason,
        version if promoted else current,
        champion_metrics,
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
    return current, previous
