"""The Dagster jobs the anomaly sensor launches (rollback, alert, model_rollback, rerun), each
an op wired to one responder of `responders.py`.

Each is also launchable by hand from the UI (Launchpad: `anomaly_key`, and for a rollback of
a critical service `approved: true`; a rerun takes the failed run's `run_key`) or, for a
rollback, from `dcicd approve ANOMALY_KEY`.
"""

from datetime import UTC, datetime

import dagster as dg

from dcicd_platform.automation import responders
from dcicd_platform.automation.actions_asset import actions_materialization
from dcicd_platform.automation.actions_table import ensure_actions_table
from dcicd_platform.resources import DUCKDB_POOL, SecretsResource, WarehouseResource


class AnomalyConfig(dg.Config):
    anomaly_key: str
    approved: bool = False  # a human approved this rollback (critical services wait for one)
    approved_by: str = ""  # who approved it (audited in ops.interventions)
    resolve: bool = False  # the anomaly cleared: resolve the alert that was sent


class RerunConfig(dg.Config):
    run_key: str  # the failed run (core.pipeline_runs.run_key) whose flaky jobs to re-run


def _secrets(resource: SecretsResource) -> responders.Secrets:
    return responders.Secrets(
        github_token=resource.github_token or "",
        slack_webhook_url=resource.slack_webhook_url or "",
        pagerduty_routing_key=resource.pagerduty_routing_key or "",
    )


def response_op(
    name: str,
    answer,
    resources: frozenset[str] = frozenset(),
    config_class: type[dg.Config] = AnomalyConfig,
) -> dg.OpDefinition:
    """An op that answers one anomaly (or run): `answer(conn, config, resources)` on a
    warehouse connection, in the duckdb pool; logs the decision and returns it."""

    @dg.op(
        name=name,
        pool=DUCKDB_POOL,
        required_resource_keys={"warehouse", "settings", *resources},
    )
    def _answer(context: dg.OpExecutionContext, config: config_class) -> str:
        warehouse: WarehouseResource = context.resources.warehouse
        time_zone = context.resources.settings.load().reporting.time_zone
        with warehouse.get_connection() as conn:
            outcome = answer(conn, config, context.resources)
            ensure_actions_table(conn)
            audit = actions_materialization(
                conn,
                time_zone,
                datetime.now(UTC),
                decided=f"{outcome.action_id}: {outcome.decision}",
            )
        context.log.info(f"{outcome.action_id}: {outcome.decision}: {outcome.reason}")
        # ops/actions in the UI: the audit with the day's decisions, at every decision.
        context.log_event(audit)
        context.add_output_metadata({"decision": outcome.decision, "reason": outcome.reason})
        return outcome.decision

    return _answer


roll_back_deployment = response_op(
    "roll_back_deployment",
    lambda conn, config, r: responders.respond_rollback(
        conn,
        config.anomaly_key,
        r.settings.load(),
        approved=config.approved,
        secrets=_secrets(r.secrets),
        approved_by=config.approved_by or ("launchpad" if config.approved else None),
    ),
    frozenset({"secrets"}),
)
send_alert = response_op(
    "send_alert",
    lambda conn, config, r: responders.respond_alert(
        conn,
        config.anomaly_key,
        r.settings.load(),
        resolve=config.resolve,
        secrets=_secrets(r.secrets),
    ),
    frozenset({"secrets"}),
)
roll_back_model = response_op(
    "roll_back_model",
    lambda conn, config, r: responders.respond_model_rollback(
        conn, config.anomaly_key, r.settings.load(), r.mlflow.rollback_champion
    ),
    frozenset({"mlflow"}),
)
rerun_flaky_jobs = response_op(
    "rerun_flaky_jobs",
    lambda conn, config, r: responders.respond_rerun(
        conn, config.run_key, r.settings.load(), secrets=_secrets(r.secrets)
    ),
    frozenset({"secrets"}),
    RerunConfig,
)


@dg.job(description="Roll back the deployment a critical deployment_health anomaly names.")
def rollback():
    roll_back_deployment()


@dg.job(description="Send an anomaly to Slack, PagerDuty and the alert webhook (live mode).")
def alert():
    send_alert()


@dg.job(description="Move a model's champion alias back when its live quality falls.")
def model_rollback():
    roll_back_model()


@dg.job(description="Self-healing: re-run a failed run's jobs when all are known flakes.")
def rerun():
    rerun_flaky_jobs()


RESPONSE_JOBS = [rollback, alert, model_rollback, rerun]
OP_OF = {
    "rerun": "rerun_flaky_jobs",
    "rollback": "roll_back_deployment",
    "alert": "send_alert",
    "model_rollback": "roll_back_model",
}
