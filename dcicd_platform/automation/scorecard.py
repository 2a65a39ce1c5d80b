"""The autonomy scorecard: how far the automation runs without people, against the rollout
strategy's targets, over the last `monitoring.scorecard_days` (30) days.

- Self-healing success rate: of the re-runs executed (ops.actions, `rerun` executed), the
  share whose later attempt of the same run passed, among those whose later attempt ended
  (core.pipeline_runs, attempt > the failed one's). Target > 85%.
- Manual interventions per month (ops.interventions): approvals of rollbacks, switches of a
  capability (overrides), acknowledgements marked a false alarm; scaled to 30 days. Target < 2.
- Rollbacks: the rollback decisions (ops.actions) by how they ended: executed, failed,
  shadow, pending approval, suppressed; and those an operator marked a false alarm (on the
  rollback, or on the anomaly it answered, the same occurrence).
- Rollback decision accuracy (live): of the decisions to roll back (executed, failed, shadow
  or pending approval; a decision suppressed by a guardrail is none), the share no operator
  marked a false alarm. Target > 90%.
- False rollback rate (live): decisions to roll back marked a false alarm, over the production
  deployments of the window (marts.production_deployments), as the benchmark counts clean
  deployments rolled back among all. Target < 5%.
- Anomalies handled without a person: of the anomalies detected in the window (ml.anomalies,
  their event's time, as the weekly review's decisions table places them; last_seen_at is when
  a refresh last saw one, today for every open one), the share whose occurrence no one
  acknowledged nor approved a rollback of.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dbt_like_sql.catalog import column_exists, existing_tables

# (figure, comparison, target): the rollout strategy's
TARGETS = {
    "self_healing": (">", 0.85),
    "interventions_per_month": ("<", 2),
    "rollback_accuracy": (">", 0.90),
    "false_rollback_rate": ("<", 0.05),
}

DECIDED_TO_ROLL_BACK = ("executed", "failed", "shadow", "pending_approval")

# A decision belongs to the time of what it answered, as the weekly review's decisions table
# places it: a re-run to its failed run's end, a rollback to its anomaly's detection; else to
# when it was requested (the automation may decide long after the event, as on a backfill).
RERUNS_SQL = """
WITH reruns AS (
    SELECT DISTINCT a.entity_key AS run_key FROM ops.actions a {joins}
    WHERE a.kind = 'rerun' AND a.decision = 'executed' AND {at} >= $since AND {at} < $until
), later AS (
    SELECT f.run_key,
        bool_or(l.conclusion = 'success') AS passed,
        bool_or(l.conclusion IN ('success', 'failure', 'timed_out')) AS ended
    FROM reruns f
    JOIN core.pipeline_runs o ON o.run_key = f.run_key
    JOIN core.pipeline_runs l ON l.source = o.source AND l.repo = o.repo
        AND l.provider_run_id = o.provider_run_id AND l.attempt > o.attempt
        AND l.status = 'completed'
    GROUP BY f.run_key
)
SELECT (SELECT count(*) FROM reruns), count(*) FILTER (WHERE ended),
    count(*) FILTER (WHERE passed) FROM later
"""

# The occurrence a rollback action answered: `rollback:<key>` is the first, `#n` the n-th.
ACTION_OCCURRENCE = (
    "CASE WHEN contains(a.action_id, '#') THEN split_part(a.action_id, '#', -1)::INT ELSE 1 END"
)

ROLLBACKS_SQL = """
SELECT a.decision, count(*) AS n, {false_alarms} AS false_alarms
FROM ops.actions a {joins}
WHERE a.kind = 'rollback' AND {at} >= $since AND {at} < $until
GROUP BY a.decision
"""
ROLLBACK_FALSE_ALARMS = f"""count(*) FILTER (WHERE EXISTS (SELECT 1 FROM ops.interventions k
        WHERE k.kind = 'ack' AND k.false_alarm AND k.anomaly_key = a.anomaly_key
            AND k.occurrence = {ACTION_OCCURRENCE}))"""

HANDS_OFF_SQL = """
SELECT count(*) AS seen,
    count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM ops.interventions k
        WHERE k.kind IN ('ack', 'approve') AND k.anomaly_key = a.anomaly_key
            AND k.occurrence = coalesce(a.occurrence, 1))) AS untouched
FROM ml.anomalies a
WHERE a.detected_at >= $since
    AND a.detected_at < $until
"""


@dataclass
class Scorecard:
    """The figures of one window; each rate is None when it has nothing to measure."""

    days: int
    reruns_executed: int = 0
    reruns_ended: int = 0
    reruns_passed: int = 0
    approvals: int = 0
    switches: int = 0
    false_alarms: int = 0
    rollbacks: dict[str, int] = field(default_factory=dict)  # by decision
    false_rollbacks: int = 0  # decisions to roll back marked a false alarm
    rollback_false_alarms: int = 0  # every rollback decision marked one (suppressed too)
    production_deployments: int | None = None
    anomalies_seen: int = 0
    anomalies_hands_off: int = 0

    @property
    def self_healing(self) -> float | None:
        return self.reruns_passed / self.reruns_ended if self.reruns_ended else None

    @property
    def interventions(self) -> int:
        return self.approvals + self.switches + self.false_alarms

    @property
    def interventions_per_month(self) -> float:
        return self.interventions * 30 / self.days

    @property
    def rollback_decisions(self) -> int:
        return sum(n for d, n in self.rollbacks.items() if d in DECIDED_TO_ROLL_BACK)

    @property
    def rollback_accuracy(self) -> float | None:
        decided = self.rollback_decisions
        return (decided - self.false_rollbacks) / decided if decided else None

    @property
    def false_rollback_rate(self) -> float | None:
        deployments = self.production_deployments
        return self.false_rollbacks / deployments if deployments else None

    @property
    def hands_off(self) -> float | None:
        return self.anomalies_hands_off / self.anomalies_seen if self.anomalies_seen else None

    def meets(self, figure: str) -> bool | None:
        """Whether a figure meets its target (None: nothing measured)."""
        value = getattr(self, figure)
        if value is None:
            return None
        op, target = TARGETS[figure]
        return value > target if op == ">" else value < target


def read_scorecard(conn, now: datetime | None = None, days: int = 30) -> Scorecard:
    """The scorecard of the `days` up to `now`, from whichever tables exist yet."""
    until = now or datetime.now(UTC)
    window = {"since": until - timedelta(days=days), "until": until}
    tables = existing_tables(conn)
    card = Scorecard(days)
    if "ops.actions" in tables and "core.pipeline_runs" in tables:
        joins, at = "", "a.requested_at"
        if column_exists(conn, "core.pipeline_runs", "finished_at"):
            joins = "LEFT JOIN core.pipeline_runs r ON r.run_key = a.entity_key"
            at = "coalesce(r.finished_at, r.started_at, a.requested_at)"
        card.reruns_executed, card.reruns_ended, card.reruns_passed = conn.execute(
            RERUNS_SQL.format(joins=joins, at=at), window
        ).fetchone()
    if "ops.interventions" in tables:
        card.approvals, card.switches, card.false_alarms = conn.execute(
            "SELECT count(*) FILTER (WHERE kind = 'approve'),"
            " count(*) FILTER (WHERE kind = 'switch'),"
            " count(*) FILTER (WHERE kind = 'ack' AND false_alarm)"
            " FROM ops.interventions WHERE done_at >= $since AND done_at < $until",
            window,
        ).fetchone()
    if "ops.actions" in tables:
        joins, at = "", "a.requested_at"
        if "ml.anomalies" in tables:
            joins = "LEFT JOIN ml.anomalies n ON n.anomaly_key = a.anomaly_key"
            at = "coalesce(n.detected_at, a.requested_at)"
        false_alarms = ROLLBACK_FALSE_ALARMS if "ops.interventions" in tables else "0"
        sql = ROLLBACKS_SQL.format(false_alarms=false_alarms, joins=joins, at=at)
        for decision, n, false in conn.execute(sql, window).fetchall():
            card.rollbacks[decision] = n
            card.rollback_false_alarms += false
            if decision in DECIDED_TO_ROLL_BACK:
                card.false_rollbacks += false
    if "marts.production_deployments" in tables:
        card.production_deployments = conn.execute(
            "SELECT count(*) FROM marts.production_deployments"
            " WHERE deployed_at >= $since AND deployed_at < $until",
            window,
        ).fetchone()[0]
    if "ml.anomalies" in tables:
        sql = HANDS_OFF_SQL
        if "ops.interventions" not in tables:
            sql = "SELECT count(*), count(*) FROM ml.anomalies a"
            sql += " WHERE a.detected_at >= $since"
            sql += " AND a.detected_at < $until"
        card.anomalies_seen, card.anomalies_hands_off = conn.execute(sql, window).fetchone()
    return card


def _n(count: int, noun: str, plural: str | None = None) -> str:
    """'1 switch', '2 switches', '0 false alarms'."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def _interventions(card: Scorecard) -> str:
    return (
        f"{_n(card.approvals, 'approval')}, {_n(card.switches, 'switch', 'switches')},"
        f" {_n(card.false_alarms, 'false alarm')}"
    )


def _reruns(card: Scorecard, executed: bool = True) -> str:
    """'1 of 2 re-runs passed (3 re-run)' (executed: with how many ran), or 'no re-run yet'."""
    if not card.reruns_executed:
        return "no re-run yet"
    if not card.reruns_ended:
        return f"{card.reruns_executed} re-run, none ended yet"
    passed = f"{card.reruns_passed} of {_n(card.reruns_ended, 're-run')} passed"
    return passed + (f" ({card.reruns_executed} re-run)" if executed else "")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _against(card: Scorecard, figure: str, style) -> str:
    """'(target > 85%)' coloured by whether it is met."""
    op, target = TARGETS[figure]
    shown = f"{target:g}" if figure == "interventions_per_month" else f"{target:.0%}"
    met = card.meets(figure)
    colour = None if met is None else "green" if met else "red"
    return style(f"(target {op} {shown})", fg=colour)


def scorecard_lines(card: Scorecard, style=lambda text, **_: text) -> list[str]:
    """The scorecard as lines of text (`dcicd status`); style: click.style on a terminal."""
    ended = ", ".join(f"{n} {d.replace('_', ' ')}" for d, n in sorted(card.rollbacks.items()))
    return [
        style(f"Autonomy, last {card.days} days", bold=True) + "   (targets: the rollout strategy)",
        f"  self-healing {_pct(card.self_healing)}: {_reruns(card)}"
        f" {_against(card, 'self_healing', style)} · anomalies handled without a person"
        f" {_pct(card.hands_off)} ({card.anomalies_hands_off} of {card.anomalies_seen})",
        f"  manual interventions {card.interventions_per_month:.1f} a month:"
        f" {_interventions(card)} {_against(card, 'interventions_per_month', style)}",
        f"  rollbacks: {ended or 'none'}; {_n(card.rollback_false_alarms, 'false alarm')}"
        " · rollback"
        f" decisions right {_pct(card.rollback_accuracy)}"
        f" {_against(card, 'rollback_accuracy', style)} · false rollbacks"
        f" {_pct(card.false_rollback_rate)} of {card.production_deployments or 0} deployments"
        f" {_against(card, 'false_rollback_rate', style)}",
    ]


def switch_line(switches: dict, style=lambda text, **_: text) -> str:
    """'switches: predictions live · alerts, reruns shadow (ceiling: mode) · rollbacks off
    (switched by ana ...)': capabilities in the same state named together, one switched by an
    operator on its own with who and when."""
    groups: dict[tuple, list[str]] = {}
    parts = []
    for s in switches.values():
        colour = {"off": "red", "shadow": "yellow"}.get(s.mode)
        if s.switched is not None:
            text = f"{s.capability} {s.mode}" + (" (ceiling: mode)" if s.capped_by_mode else "")
            text += f" (switched by {s.switched_by} {s.switched_at:%Y-%m-%d %H:%M})"
            parts.append((len(parts), style(text, fg=colour)))
            continue
        key = (s.mode, s.capped_by_mode)
        if key not in groups:
            groups[key] = []
            parts.append((key, None))
        groups[key].append(s.capability)
    shown = []
    for key, text in parts:
        if text is None:
            mode, capped = key
            text = style(
                f"{', '.join(groups[key])} {mode}" + (" (ceiling: mode)" if capped else ""),
                fg={"off": "red", "shadow": "yellow"}.get(mode),
            )
        shown.append(text)
    return "  switches: " + " · ".join(shown)


def scorecard_rows(card: Scorecard) -> list[dict]:
    """The scorecard as table rows (the weekly review): figure, value, target, met (None: no
    target, or nothing measured)."""

    def target(figure: str) -> str:
        op, value = TARGETS[figure]
        shown = f"{value:g} a month" if figure == "interventions_per_month" else f"{value:.0%}"
        return f"{op} {shown}"

    ended = ", ".join(f"{n} {d.replace('_', ' ')}" for d, n in sorted(card.rollbacks.items()))
    return [
        {
            "figure": "self-healing success rate",
            "value": f"{_pct(card.self_healing)} ({_reruns(card, executed=False)})",
            "target": target("self_healing"),
            "met": card.meets("self_healing"),
        },
        {
            "figure": "manual interventions",
            "value": f"{card.interventions_per_month:.1f} a month ({_interventions(card)})",
            "target": target("interventions_per_month"),
            "met": card.meets("interventions_per_month"),
        },
        {
            "figure": "rollbacks",
            "value": f"{ended or 'none'}; {_n(card.rollback_false_alarms, 'false alarm')}",
            "target": "",
            "met": None,
        },
        {
            "figure": "rollback decision accuracy",
            "value": _pct(card.rollback_accuracy),
            "target": target("rollback_accuracy"),
            "met": card.meets("rollback_accuracy"),
        },
        {
            "figure": "false rollback rate",
            "value": f"{_pct(card.false_rollback_rate)} of {card.production_deployments or 0}"
            " deployments",
            "target": target("false_rollback_rate"),
            "met": card.meets("false_rollback_rate"),
        },
        {
            "figure": "anomalies handled without a person",
            "value": f"{_pct(card.hands_off)} ({card.anomalies_hands_off} of"
            f" {card.anomalies_seen})",
            "target": "",
            "met": None,
        },
    ]
