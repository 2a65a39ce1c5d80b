"""The build predictors as assets: score new runs, measure the champions live, retrain.

Within a run, scoring comes first (training depends on it), so a run is always scored by a
model that had not seen it. Training is skipped, with its reason in the log and the metadata,
while there is too little history.
"""

import dagster as dg

from dcicd_platform.assets.versions import table_version
from dcicd_platform.resources import (
    DUCKDB_POOL,
    MlflowResource,
    SettingsResource,
    WarehouseResource,
)


def readable_float(value: float | int) -> float | int:
    """A figure to four significant digits (0.7591, 312.4), what the UI shows and plots (the
    exact figures stay in MLflow); counts stay whole."""
    return float(f"{value:.4g}") if isinstance(value, float) else value


RUNS = [dg.AssetKey(["core", "pipeline_runs"]), dg.AssetKey(["core", "pipeline_jobs"])]
PREDICTIONS = dg.AssetKey(["ml", "build_predictions"])
MODEL_NAMES = ("build_duration", "build_outcome")


def _champions(mlflow: MlflowResource, log) -> tuple[list, dict]:
    """The champion of each model, ready to score, and what serves each (None: nothing yet)."""
    from ml.registry import load_version, serving
    from ml.scoring import Champion

    client = mlflow.client()
    found, servings = [], {}
    for name in MODEL_NAMES:
        servings[name] = serves = serving(client, name)
        if serves is None:
            continue
        version = serves.version
        trained_through = client.get_model_version(name, version).tags.get("trained_through")
        if trained_through is None:  # not registered by dcicd: live quality could not be judged
            log.warning(f"{name} version {version} has no trained_through tag: not used")
            servings[name] = None
            continue
        found.append(Champion(name, version, load_version(name, version), trained_through))
    return found, servings


@dg.asset(
    key=PREDICTIONS,
    deps=RUNS,
    group_name="ml",
    kinds={"lightgbm", "duckdb"},
    pool=DUCKDB_POOL,
    owners=["team:platform"],
    description="Each run's predicted duration (with its P10-P90 interval and the bound above "
    "which it is a slow build) and probability of success, by the champion models of the moment "
    "it was first seen (a trained model, or the baseline when no trained model beats it); never "
    "rewritten. Also writes ml.serving: which predictor serves each model, why, and since when.",
)
def build_predictions(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    settings: SettingsResource,
) -> dg.MaterializeResult:
    from dcicd_platform.automation.interventions import effective_mode
    from ml.features import features_from_warehouse
    from ml.scoring import PREDICTIONS_DDL, predictions, store, unscored
    from ml.serving import record_serving

    # The slow-build bound is set when a run is scored, at the level configured then.
    config = settings.load()
    level = config.anomalies.build_duration_level
    with warehouse.get_connection() as conn:
        switched_off = effective_mode(conn, config, "predictions") == "off"
    if switched_off:  # `dcicd switch predictions off`: no run is scored until switched back
        context.log.info("predictions are switched off: no run scored")
        return dg.MaterializeResult(metadata={"note": "predictions switched off"})
    champions, servings = _champions(mlflow, context.log)
    metadata = {}
    with warehouse.get_connection() as conn:
        conn.execute(PREDICTIONS_DDL)
        record_serving(conn, servings)
        features = features_from_warehouse(conn) if champions else None
        for champion in champions:
            serves = servings[champion.name]
            runs = unscored(conn, features, champion.name)
            new = store(conn, predictions(champion, runs, level))
            metadata[f"{champion.name}_scored"] = new
            metadata[f"{champion.name}_champion"] = f"version {champion.version}"
            metadata[f"{champion.name}_predictor"] = serves.label
            metadata[f"{champion.name}_serving"] = serves.reason
            context.log.info(
                f"{champion.name} v{champion.version} ({serves.label}, {serves.reason})"
                f" scored {new} new runs"
            )
        total = conn.execute("SELECT count(*) FROM ml.build_predictions").fetchone()[0]
        version = table_version(conn, "ml.build_predictions")
    if not champions:
        context.log.info("no champion model yet: nothing scored (training registers one)")
        metadata["note"] = "no champion model yet"
    return dg.MaterializeResult(
        metadata={"dagster/row_count": total, **metadata}, data_version=version
    )


@dg.asset(
    key=["ml", "model_quality"],
    deps=[PREDICTIONS],
    group_name="ml",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    owners=["team:platform"],
    description="Live quality of every model version (trained or baseline) on runs it never "
    "trained on, against the configured floors, with which predictor it is and why it serves.",
)
def model_quality(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    from ml.scoring import refresh_model_quality

    floors = settings.load().models
    with warehouse.get_connection() as conn:
        rows = refresh_model_quality(
            conn, floors.duration_within_20pct_floor, floors.outcome_accuracy_floor
        )
        # measured_at is when this build measured, not what it found
        version = table_version(conn, "ml.model_quality", exclude=("measured_at",))
    lines = [
        "| model | version | predictor | runs | within 20% | accuracy | below floor | why |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda x: "-" if x is None else f"{x:.1%}"  # noqa: E731
    for r in rows:
        why = r["reason"] if r["serving"] else f"not serving ({r['reason'] or 'replaced'})"
        lines.append(
            f"| {r['model']} | {r['version']} | {r['predictor']} | {r['runs']} |"
            f" {fmt(r['within_20pct'])} | {fmt(r['accuracy'])} | {r['below_floor']} | {why} |"
        )
    below = [f"{r['model']} v{r['version']}" for r in rows if r["below_floor"]]
    if below:
        context.log.warning(f"below the quality floor: {', '.join(below)}")
    serving = [f"{r['model']} v{r['version']} {r['predictor']}" for r in rows if r["serving"]]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "live_quality": dg.MetadataValue.md("\n".join(lines)),
            "below_floor": ", ".join(below) or "none",
            "serving": ", ".join(serving) or "none measured yet",
        },
        data_version=version,
    )


def _train_asset(name: str):
    @dg.asset(
        key=["ml", f"{name}_model"],
        deps=[PREDICTIONS],  # score with the old champion before learning from the new runs
        group_name="ml",
        kinds={"lightgbm", "mlflow"},
        pool=DUCKDB_POOL,
        owners=["team:platform"],
        description=f"Trains the {name.replace('_', ' ')} model, logs it to MLflow, registers "
        "it as challenger and promotes it to champion only if it beats the champion and the "
        "baseline on the same evaluation slice; when neither it nor the champion beats the "
        "baseline, the baseline is registered (or kept) and serves. Each version's MLflow "
        "description is its model card.",
    )
    def _train(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        mlflow: MlflowResource,
        settings: SettingsResource,
    ) -> dg.MaterializeResult:
        from ml.features import features_from_warehouse
        from ml.registry import log_and_register
        from ml.train import InsufficientData, train_duration, train_outcome

        models = settings.load().models
        with warehouse.get_connection() as conn:
            features = features_from_warehouse(conn)
        train = train_duration if name == "build_duration" else train_outcome
        try:
            model = train(features, models.evaluation_share, models.min_training_runs)
        except InsufficientData as exc:
            context.log.warning(f"{name}: training skipped: {exc}")
            return dg.MaterializeResult(metadata={"skipped": str(exc)})
        client = mlflow.client()
        registration = log_and_register(client, model)
        context.log.info(f"{name} v{registration.version}: {registration.reason}")
        if registration.baseline_version is not None:
            context.log.warning(
                f"{name}: the baseline serves as version {registration.baseline_version}:"
                f" {registration.serving_reason}"
            )
        ui = models.mlflow_ui_url.rstrip("/")
        experiment = client.get_run(registration.run_id).info.experiment_id
        metadata = {
            "mlflow_run": dg.MetadataValue.url(
                f"{ui}/#/experiments/{experiment}/runs/{registration.run_id}"
            ),
            "mlflow_run_id": registration.run_id,
            "model_version": registration.version,
            "mlflow_model_version": dg.MetadataValue.url(
                f"{ui}/#/models/{name}/versions/{registration.version}"
            ),
            "promoted": registration.promoted,
            "promotion": registration.reason,
            "champion_version": registration.champion_version or "none",
            "serving_predictor": registration.serving_predictor or "none",
            "serving_reason": registration.serving_reason or "nothing serves",
            "trained_through": model.trained_through,
        }
        metadata |= {f"eval_{k}": readable_float(v) for k, v in model.metrics.items() if v == v}
        metadata |= {
            f"baseline_{k}": readable_float(v) for k, v in model.baseline.items() if v == v
        }
        return dg.MaterializeResult(metadata=metadata)

    return _train


training_assets = [_train_asset(name) for name in MODEL_NAMES]
ml_table_assets = [build_predictions, model_quality]
