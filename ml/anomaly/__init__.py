"""Anomaly detectors over the warehouse: what went wrong, how sure, and what to tell a human.

Each detector (one module each) returns rows of `ml.anomalies` (CONTRACTS.md section 4): a
stable key (the same anomaly found again has the same key), kind, service, entity, observed and
expected values, a score, a severity and a one-line explanation; `store` upserts them.

- build_duration: a successful run far slower than expected: above the one-sided conformal
  bound of its predicted duration (ml/intervals.py) when the run was scored with one, else a
  fixed ratio over the prediction or the workflow's trailing median under the same trigger;
  and a job that became slower than its two weeks before (its last three runs' median too).
- failure_rate: a workflow's real failures in an ISO week against the four weeks before, by a
  one-sided two-proportion z-test; flakes (a failure its sha later passed) are told apart.
- ci_cost: a repository's daily CI cost against the same weekday of the eight weeks before
  (median and MAD: a robust z-score), a workflow's cost per run against its four weeks before
  (same score), and a month whose run-rate forecast breaks a budget.
- deployment_health: the health samples after a production deployment against those before it,
  as automated canary analysis judges a canary (Kayenta): a Mann-Whitney U test per metric,
  harm in one direction only (higher), an effect-size floor, a score = share of metrics that
  pass, and pass / marginal / fail; an incident the deployment caused within the rollback
  window fails it outright.
- model_accuracy: a model version whose live quality is below its floor.
- collection: webhooks that missed more than 1% of a repository's runs (the gaps the history
  import filled, ops.collection), that are loaded more than 5 minutes after they arrive, or
  that went quiet.

The thresholds are the configuration's (`dcicd_platform.config.AnomalyThresholds`). Polars and
SciPy are imported when a detector runs: importing this package (the asset graph reads `SQL`
for its lineage) stays cheap.
"""

from ml.anomaly.ci_cost import robust_z
from ml.anomaly.deployment_health import canary_verdict
from ml.anomaly.detect import DETECTORS, SQL, detect_all
from ml.anomaly.failure_rate import one_sided_proportion_p
from ml.anomaly.store import ANOMALIES_DDL, COLUMNS, SEVERITIES, anomaly_key, as_frame, store

__all__ = [
    "ANOMALIES_DDL",
    "COLUMNS",
    "DETECTORS",
    "SEVERITIES",
    "SQL",
    "anomaly_key",
    "as_frame",
    "canary_verdict",
    "detect_all",
    "one_sided_proportion_p",
    "robust_z",
    "store",
]
