"""What people do to the automation, audited in `ops.interventions`: one row per act, who and
when, never updated.

- `switch`: a capability (predictions, alerts, rollbacks, reruns, model_rollbacks) set to
  `off`, `shadow` or `live` by `dcicd switch`, or back to the configuration (`mode` NULL). The
  automation reads the latest switch at every decision, so it needs no deploy or restart
  (the rollout strategy's "level 1 rollback": disable one feature, keep the rest).
- `ack`: an anomaly's occurrence acknowledged by `dcicd ack` (`false_alarm` when the operator
  says it should not have been raised); or a rollback action marked a false alarm.
- `approve`: a pending rollback of a critical service approved (`dcicd approve`, Launchpad).

Precedence of a capability's mode: the latest switch, else `automation.capabilities.<name>`;
then, for the four that act outside the platform, `automation.mode` is the ceiling (off <
shadow < live): a rollback is live only when the switch (or configuration) and the mode both
say live. Predictions follow their own switch only.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from dbt_like_sql.catalog import table_exists
from dcicd_platform.config import PlatformConfig

CAPABILITIES = ("predictions", "alerts", "rollbacks", "reruns", "model_rollbacks")
MODES = ("off", "shadow", "live")
# The capabilities that act outside the platform: automation.mode is their ceiling.
CAPPED = ("alerts", "rollbacks", "reruns", "model_rollbacks")

INTERVENTIONS_DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE SEQUENCE IF NOT EXISTS ops.intervention_ids;
CREATE TABLE IF NOT EXISTS ops.interventions (
    intervention_id BIGINT PRIMARY KEY DEFAULT nextval('ops.intervention_ids'),
    kind VARCHAR NOT NULL,          -- switch | ack | approve
    capability VARCHAR,             -- switch: which one
    mode VARCHAR,                   -- switch: off | shadow | live; NULL: back to the config
    anomaly_key VARCHAR,            -- ack, approve: the anomaly
    occurrence INTEGER,             -- ack: the occurrence acknowledged (ml.anomalies)
    action_id VARCHAR,              -- ack of an action (a rollback), approve: the rollback
    false_alarm BOOLEAN NOT NULL DEFAULT false,
    note VARCHAR,
    done_by VARCHAR NOT NULL,
    done_at TIMESTAMPTZ NOT NULL
);
"""


def ensure_interventions_table(conn) -> None:
    conn.execute(INTERVENTIONS_DDL)


def operator() -> str:
    """Who is at the keyboard: DCICD_OPERATOR, else the login name."""
    try:
        return os.environ.get("DCICD_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record(conn, kind: str, *, done_by: str, now: datetime | None = None, **columns) -> int:
    """Append one intervention; returns its id."""
    ensure_interventions_table(conn)
    names = ["kind", "done_by", "done_at", *columns]
    values = [kind, done_by, now or datetime.now(UTC), *columns.values()]
    return conn.execute(
        f"INSERT INTO ops.interventions ({', '.join(names)})"
        f" VALUES ({', '.join('?' for _ in names)}) RETURNING intervention_id",
        values,
    ).fetchone()[0]


# ---------------------------------------------------------------- switches


@dataclass(frozen=True)
class Switch:
    """A capability's mode now: `mode` decides; `configured` is what the configuration says,
    `switched` the latest switch (None: none, or back to the configuration) and by whom."""

    capability: str
    mode: str
    configured: str
    switched: str | None = None
    switched_by: str | None = None
    switched_at: datetime | None = None
    capped_by_mode: bool = False


def _rank(mode: str) -> int:
    return MODES.index(mode)


def latest_switches(conn) -> dict[str, tuple[str | None, str, datetime]]:
    """Per capability, its latest switch: (mode or None, by, at)."""
    if not table_exists(conn, "ops.interventions"):
        return {}
    rows = conn.execute(
        "SELECT capability, mode, done_by, done_at FROM ops.interventions WHERE kind = 'switch'"
        " QUALIFY row_number() OVER (PARTITION BY capability"
        " ORDER BY done_at DESC, intervention_id DESC) = 1"
    ).fetchall()
    return {cap: (mode, by, at) for cap, mode, by, at in rows}


def switches(conn, config: PlatformConfig) -> dict[str, Switch]:
    """Every capability's mode at this moment, read at decision time."""
    latest = latest_switches(conn)
    found = {}
    for cap in CAPABILITIES:
        configured = getattr(config.automation.capabilities, cap)
        switched, by, at = latest.get(cap, (None, None, None))
        wanted = switched or configured
        mode = wanted
        capped = False
        if cap in CAPPED and _rank(config.automation.mode) < _rank(wanted):
            mode, capped = config.automation.mode, True
        found[cap] = Switch(cap, mode, configured, switched, by, at, capped)
    return found


def effective_mode(conn, config: PlatformConfig, capability: str) -> str:
    """The mode one capability decides in now (switch, configuration, automation.mode)."""
    return switches(conn, config)[capability].mode


def set_switch(
    conn,
    capability: str,
    mode: str | None,
    *,
    done_by: str,
    note: str | None = None,
    now: datetime | None = None,
    config: PlatformConfig | None = None,
) -> int | None:
    """Switch a capability (None: back to the configuration); audited. None, and nothing
    recorded, when it changes nothing: back to the configuration it already follows, or to
    the mode it is already switched to (or, unswitched, configured with) - no intervention."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}: one of {', '.join(CAPABILITIES)}")
    if mode is not None and mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
    current = switches(conn, config or PlatformConfig())[capability]
    if mode == (current.switched or (None if mode is None else current.configured)):
        return None
    return record(
        conn, "switch", done_by=done_by, now=now, capability=capability, mode=mode, note=note
    )


# ---------------------------------------------------------------- acknowledgements


class AlreadyAcknowledged(ValueError):
    """The occurrence (or the rollback) was acknowledged before: a second row would count
    twice."""


@dataclass(frozen=True)
class Acknowledged:
    intervention_id: int
    anomaly_key: str | None
    occurrence: int | None
    action_id: str | None
    false_alarm: bool


def acknowledge(
    conn,
    key: str,
    *,
    false_alarm: bool = False,
    note: str | None = None,
    done_by: str,
    now: datetime | None = None,
) -> Acknowledged:
    """Acknowledge an anomaly's current occurrence (key: its anomaly_key), or mark a rollback
    action (key: its action_id in ops.actions, `rollback:<anomaly key>`) a false alarm.
    LookupError when the key names neither; ValueError for an empty key, an action that is no
    rollback, or an anomaly that cleared; AlreadyAcknowledged when it was acknowledged before,
    unless this marks a plain acknowledgement a false alarm (then recorded: one false alarm)."""
    if not key or not key.strip():
        raise ValueError("an anomaly key (or rollback:<anomaly key>) is needed: dcicd ack KEY")
    anomaly_key, occurrence, action_id = _acknowledged_target(conn, key)
    _refuse_twice(conn, key, anomaly_key, occurrence, action_id, false_alarm)
    ident = record(
        conn,
        "ack",
        done_by=done_by,
        now=now,
        anomaly_key=anomaly_key,
        occurrence=occurrence,
        action_id=action_id,
        false_alarm=false_alarm,
        note=note,
    )
    return Acknowledged(ident, anomaly_key, occurrence, action_id, false_alarm)


def _acknowledged_target(conn, key: str) -> tuple[str, int, str | None]:
    """(anomaly_key, occurrence, action_id) that `key` names: an open anomaly's current
    occurrence (no action), else a rollback action of ops.actions. LookupError when it names
    neither; ValueError for an anomaly that cleared or an action that is no rollback."""
    if table_exists(conn, "ml.anomalies"):
        found = conn.execute(
            "SELECT anomaly_key, coalesce(occurrence, 1), cleared_at FROM ml.anomalies"
            " WHERE anomaly_key = ?",
            [key],
        ).fetchall()
        if found:
            anomaly_key, occurrence, cleared_at = found[0]
            if cleared_at is not None:
                raise ValueError(
                    f"{key} is not open: cleared at {cleared_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
                )
            return anomaly_key, occurrence, None
    if table_exists(conn, "ops.actions"):
        found = conn.execute(
            "SELECT kind, anomaly_key FROM ops.actions WHERE action_id = ?", [key]
        ).fetchall()
        if found:
            kind, anomaly_key = found[0]
            if kind != "rollback":
                raise ValueError(f"{key} is a {kind} action: only a rollback is acknowledged")
            return anomaly_key, int(key.rsplit("#", 1)[1]) if "#" in key else 1, key
    raise LookupError(f"no anomaly and no rollback action {key}: nothing to acknowledge")


def _refuse_twice(
    conn, key: str, anomaly_key: str, occurrence: int, action_id: str | None, false_alarm: bool
) -> None:
    """AlreadyAcknowledged when this occurrence (or this rollback) has an acknowledgement that
    this one would not upgrade: a false alarm after a plain one is the only second allowed."""
    if not table_exists(conn, "ops.interventions"):
        return
    before = conn.execute(
        "SELECT done_by, done_at, false_alarm FROM ops.interventions WHERE kind = 'ack'"
        " AND anomaly_key = ? AND occurrence = ? AND action_id IS NOT DISTINCT FROM ?"
        " ORDER BY false_alarm DESC, done_at",
        [anomaly_key, occurrence, action_id],
    ).fetchall()
    if not before or (false_alarm and not before[0][2]):
        return
    by, at, was_false = before[0]
    what = " as a false alarm" if was_false else ""
    raise AlreadyAcknowledged(
        f"{key} (occurrence {occurrence}) already acknowledged{what} by {by}"
        f" at {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    )


def unacknowledged_sql(conn, alias: str = "ml.anomalies") -> str:
    """A condition on ml.anomalies rows: the occurrence was not acknowledged (TRUE while no
    acknowledgement was ever recorded)."""
    if not table_exists(conn, "ops.interventions"):
        return "TRUE"
    return (
        "NOT EXISTS (SELECT 1 FROM ops.interventions k WHERE k.kind = 'ack'"
        f" AND k.action_id IS NULL AND k.anomaly_key = {alias}.anomaly_key"
        f" AND k.occurrence = coalesce({alias}.occurrence, 1))"
    )
