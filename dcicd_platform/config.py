"""The platform configuration: one pydantic model, loaded from DCICD_CONFIG or dcicd.yaml.

Every key has a default, so an empty file (or no file) is a working configuration. Unknown keys
and wrong types are errors that name the key: a typo must never be silently ignored.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Severity = Literal["info", "warning", "critical"]


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Service(_Strict):
    """A deployable service and the repositories whose events belong to it."""

    name: str = Field(min_length=1)
    repositories: list[str] = Field(default_factory=list)
    team: str | None = None
    criticality: Literal["low", "medium", "high", "critical"] = "medium"
    production_environments: list[str] = Field(
        default_factory=list,
        description="Exact environment names (any letter case) that are production for this "
        "service. Empty: the built-in rule (production, prod, production-*, prod-*).",
    )
    deployment_workflows: list[str] = Field(
        default_factory=list,
        description="Glob patterns on a workflow's name or path: a successful run of one on the "
        "default branch is a production deployment of its head sha.",
    )
    pagerduty_services: list[str] = Field(
        default_factory=list, description="PagerDuty service ids or names paging for this service."
    )
    ci_budget_usd_per_deployment: float | None = Field(default=None, ge=0)
    monthly_ci_budget_usd: float | None = Field(default=None, ge=0)
    paths: list[str] = Field(
        default_factory=list,
        description="Glob patterns on file paths from the repository's root (`*` crosses "
        "folders: `services/payments/**`): the service is the part of its repositories these "
        "match, and its changes are the commits that touched one of them. Empty: the whole "
        "repositories. Services that share a repository each name theirs.",
    )
    workflows: list[str] = Field(
        default_factory=list,
        description="Glob patterns on a workflow's name or path: in a repository services "
        "share, the CI runs (and jobs) of those workflows belong to this service.",
    )

    @field_validator("paths", "workflows")
    @classmethod
    def _patterns_are_relative(cls, patterns: list[str]) -> list[str]:
        """A pattern is matched against paths relative to the repository's root, never '/x'."""
        for pattern in patterns:
            if not pattern or pattern.startswith("/"):
                raise ValueError(f"{pattern!r}: a pattern is not empty and has no leading /")
        return patterns


class RunnerRate(_Strict):
    """The price of a minute on runners whose label matches a glob pattern."""

    pattern: str = Field(min_length=1)
    usd_per_minute: float = Field(ge=0)


# GitHub-hosted standard runners from 1 January 2026 (GitHub Docs, "Actions runner pricing",
# docs.github.com/en/billing/reference/actions-runner-pricing). First match wins.
DEFAULT_RUNNER_RATES = (
    RunnerRate(pattern="self-hosted*", usd_per_minute=0.0),
    RunnerRate(pattern="ubuntu-*", usd_per_minute=0.006),
    RunnerRate(pattern="windows-*", usd_per_minute=0.010),
    RunnerRate(pattern="macos-*", usd_per_minute=0.062),
)


class CiCost(_Strict):
    runner_rates: list[RunnerRate] = Field(default_factory=lambda: list(DEFAULT_RUNNER_RATES))
    default_usd_per_minute: float = Field(
        default=0.0, ge=0, description="Rate of a label no pattern matches (self-hosted: 0)."
    )

    def rate_for(self, runner_label: str | None) -> float:
        """The per-minute rate of the first pattern matching the label, else the default."""
        for rate in self.runner_rates:
            if runner_label is not None and fnmatch.fnmatchcase(runner_label, rate.pattern):
                return rate.usd_per_minute
        return self.default_usd_per_minute


class KpiTargets(_Strict):
    """The playbook's targets for the KPI scorecard."""

    lead_time_hours: float = Field(default=24, gt=0)
    deployments_per_day: float = Field(default=1, gt=0)
    change_failure_rate: float = Field(default=0.10, ge=0, le=1)
    time_to_restore_minutes: float = Field(default=30, gt=0)
    ci_duration_p50_minutes: float = Field(default=10, gt=0)
    ci_duration_p95_minutes: float = Field(default=20, gt=0)
    cost_per_deployment_tolerance: float = Field(default=0.05, ge=0)


class AnomalyThresholds(_Strict):
    """When a deviation is worth raising, for the anomaly detectors."""

    min_severity_to_alert: Severity = "warning"
    # a model version at or above its floor (models.*_floor, critical under it) but under this
    # live quality is a warning (the rollout strategy: 70% critical, 70% to 80% warning)
    model_quality_warning_below: float = Field(default=0.80, ge=0, le=1)
    build_duration_ratio: float = Field(default=1.5, gt=1)
    # A successful run is slow above this one-sided conformal bound of its predicted duration
    # (ml/intervals.py): about 1 - level of normal runs are flagged. Applied when a run is scored.
    build_duration_level: float = Field(default=0.99, gt=0.5, lt=1)
    job_shift_ratio: float = Field(default=1.4, gt=1)
    failure_rate_p_value: float = Field(default=0.01, gt=0, lt=1)
    cost_robust_z: float = Field(default=3.5, gt=0)
    cost_min_excess_usd: float = Field(default=1.0, ge=0)
    health_p_value: float = Field(default=0.05, gt=0, lt=1)
    health_min_effect: float = Field(default=0.2, ge=0)
    # collection: the share of objects the webhooks delivered, per source and repository
    collection_min_share: float = Field(default=0.99, gt=0, le=1)
    collection_window_days: int = Field(default=7, ge=1)
    collection_min_objects: int = Field(default=10, ge=1)
    # collection: the delay between a webhook's receipt and its load (P95, minutes)
    collection_latency_minutes: float = Field(default=5, gt=0)
    # collection: a source silent this long, and twice its longest silence before, went quiet
    collection_quiet_hours: float = Field(default=6, gt=0)


class MaxLag(_Strict):
    """Minutes since a source's newest delivery in raw.events after which it is stale."""

    github: int = Field(default=60, ge=1)
    gitlab: int = Field(default=60, ge=1)
    pagerduty: int = Field(default=7 * 24 * 60, ge=1)  # incidents are rare: a week
    metrics: int = Field(default=15, ge=1)  # health samples come every minute or so


class Freshness(_Strict):
    """The freshness checks on raw/events, one per source that ever delivered."""

    max_lag_minutes: MaxLag = Field(default_factory=MaxLag)


class RollbackBackend(_Strict):
    """How a rollback is carried out (tokens come from the environment: DCICD_GITHUB_TOKEN)."""

    kind: Literal["github_deployment", "github_workflow", "webhook", "command"] = (
        "github_deployment"
    )
    github_api_url: str = "https://api.github.com"
    workflow: str | None = None
    webhook_url: str | None = None
    command: str | None = None

    @model_validator(mode="after")
    def _has_what_it_needs(self) -> RollbackBackend:
        needs = {"github_workflow": "workflow", "webhook": "webhook_url", "command": "command"}
        key = needs.get(self.kind)
        if key and not getattr(self, key):
            raise ValueError(
                f"automation.rollback.kind {self.kind} needs automation.rollback.{key}"
            )
        return self


Channel = Literal["pagerduty", "slack", "webhook"]
Mode = Literal["off", "shadow", "live"]


def _off_is_off(value: object) -> object:
    """YAML 1.1 reads a bare `off` as false: a mode written `off` is the mode off."""
    return "off" if value is False else value


class Routes(_Strict):
    """The channels an alert of each severity goes to (the rollout strategy: critical pages
    and posts, a warning only posts, info stays in `dcicd status` and the weekly review). A
    channel whose secret or URL is not set is skipped."""

    critical: list[Channel] = Field(default_factory=lambda: ["pagerduty", "slack", "webhook"])
    warning: list[Channel] = Field(default_factory=lambda: ["slack", "webhook"])
    info: list[Channel] = Field(default_factory=list)


class Alerts(_Strict):
    """Where alerts go, besides Slack (DCICD_SLACK_WEBHOOK_URL) and PagerDuty
    (DCICD_PAGERDUTY_ROUTING_KEY) when those are set in the environment."""

    webhook_url: str | None = None
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    routes: Routes = Field(default_factory=Routes)
    kind_routes: dict[str, dict[Severity, list[Channel]]] = Field(
        # a cost anomaly is a warning in the rollout strategy's catalogue, however far over
        default_factory=lambda: {"ci_cost": {"critical": ["slack", "webhook"]}},
        description="Per alert kind (an anomaly kind, or run_failure, storage, rollback_failed, "
        "health_score, false_positive_rate), the channels of a severity, over `routes`.",
    )

    def route(self, kind: str, severity: str) -> list[str]:
        """The channels an alert of this kind and severity goes to (sent in the order Slack,
        PagerDuty, webhook)."""
        by_kind = self.kind_routes.get(kind, {})
        if severity in by_kind:
            return list(by_kind[severity])
        return list(getattr(self.routes, severity, self.routes.warning))


class Capabilities(_Strict):
    """Each capability's own mode (`dcicd switch` overrides it without a deploy). The
    automation's mode is the ceiling of the four that act outside the platform: an alert,
    rollback, re-run or model rollback is only live when both say live. Predictions stay
    inside the platform and follow their own switch only."""

    predictions: Mode = "live"
    alerts: Mode = "live"
    rollbacks: Mode = "live"
    reruns: Mode = "live"
    model_rollbacks: Mode = "live"

    _modes = field_validator("*", mode="before")(_off_is_off)


class Automation(_Strict):
    """Guardrails of the automation that rolls back and pages."""

    mode: Mode = "shadow"
    capabilities: Capabilities = Field(default_factory=Capabilities)
    _mode = field_validator("mode", mode="before")(_off_is_off)
    max_rollbacks_per_service_per_day: int = Field(default=3, ge=0)
    rollback_window_minutes: int = Field(default=30, ge=0)
    critical_services_need_approval: bool = True
    breaker_consecutive_failures: int = Field(default=3, ge=1)
    act_on_anomalies_within_hours: int = Field(default=24, ge=1)
    rollback: RollbackBackend = Field(default_factory=RollbackBackend)
    alerts: Alerts = Field(default_factory=Alerts)


class ModelQuality(_Strict):
    """Floors of live model quality below which the champion is rolled back."""

    duration_within_20pct_floor: float = Field(default=0.70, ge=0, le=1)
    outcome_accuracy_floor: float = Field(default=0.70, ge=0, le=1)
    min_training_runs: int = Field(default=300, ge=20)
    evaluation_share: float = Field(default=0.2, gt=0, lt=1)
    # Where the MLflow UI answers (`mlflow ui`'s default): the model assets link their run there.
    mlflow_ui_url: str = "http://127.0.0.1:5000"


class Quality(_Strict):
    """How much of a table a row-level data-quality rule tolerates breaking it (GX's `mostly`)."""

    mostly: float = Field(default=0.99, ge=0, le=1)
    rules: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rules_exist(self) -> Quality:
        from dcicd_platform.checks.expectations import RULES

        row_rules = {r.qualified_name for r in RULES if not r.blocking}
        for name, mostly in self.rules.items():
            if name not in row_rules:
                known = ", ".join(sorted(row_rules))
                raise ValueError(f"quality.rules: {name!r} is not a row rule (one of {known})")
            if not 0 <= mostly <= 1:
                raise ValueError(f"quality.rules.{name}: mostly must lie within [0, 1]")
        return self

    def mostly_for(self, rule: str) -> float:
        """The share of rows that must keep the rule `<schema>.<table>.<rule>`."""
        return self.rules.get(rule, self.mostly)


class GitHubImport(_Strict):
    """The GitHub repositories the hourly import keeps up to date."""

    repositories: list[str] = Field(default_factory=list)
    api_url: str = "https://api.github.com"


class GitLabImport(_Strict):
    """The GitLab projects (group/project) the hourly import keeps up to date."""

    projects: list[str] = Field(default_factory=list)
    api_url: str = "https://gitlab.com/api/v4"


class PagerDutyImport(_Strict):
    """The PagerDuty services whose incidents the hourly import keeps up to date."""

    services: list[str] = Field(default_factory=list)
    api_url: str = "https://api.pagerduty.com"


class HistoryImport(_Strict):
    """What the `history_import` job imports every hour (`dcicd import` takes it on the
    command line instead); a provider with nothing listed is not asked."""

    since: str = "90d"
    github: GitHubImport = Field(default_factory=GitHubImport)
    gitlab: GitLabImport = Field(default_factory=GitLabImport)
    pagerduty: PagerDutyImport = Field(default_factory=PagerDutyImport)

    @field_validator("since", mode="before")
    @classmethod
    def _a_date_is_a_date(cls, value: object) -> object:
        """YAML reads `since: 2026-03-01` as a date: take it as the day it names."""
        import datetime

        return value.isoformat() if isinstance(value, datetime.date) else value

    def scopes(self, source: str) -> list[str]:
        """The repositories, projects or services configured for a source."""
        return {
            "github": self.github.repositories,
            "gitlab": self.gitlab.projects,
            "pagerduty": self.pagerduty.services,
        }[source]

    def api_url(self, source: str) -> str:
        return getattr(self, source).api_url


class Reporting(_Strict):
    """How figures are reckoned for people: the calendar of every day, week and month."""

    time_zone: str = Field(
        default="UTC",
        description="IANA time zone name (Europe/Berlin): days, ISO weeks and months of the "
        "marts, the trailing windows' as_of, `dcicd status` and the weekly review are this "
        "zone's. Stored times stay UTC.",
    )

    @field_validator("time_zone")
    @classmethod
    def _a_known_zone(cls, value: str) -> str:
        """An IANA name the platform's zone database knows (the warehouse's ICU knows the same
        names); 'localtime' is the host's file, not a zone."""
        import zoneinfo

        if value == "localtime" or value not in zoneinfo.available_timezones():
            raise ValueError(
                f"unknown time zone {value!r}: give an IANA name such as UTC or Europe/Berlin"
            )
        return value


class Dora(_Strict):
    """What makes a production deployment rework (DORA 2024's rework rate)."""

    rework_window_hours: float = Field(
        default=24,
        ge=0,
        description="A production deployment at most this long after an incident of its "
        "service opened (or while it is open) is rework.",
    )
    hotfix_pattern: str | None = Field(
        default="hotfix",
        min_length=1,
        description="A regular expression (RE2, searched, any letter case) on the deployed "
        "branch or ref, and on a shipped pull request's head branch and title: a match is "
        "rework. null: no hotfix marking.",
    )

    @field_validator("hotfix_pattern")
    @classmethod
    def _a_regular_expression(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return value


_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$", re.I)


class Warehouse(_Strict):
    """How much memory a warehouse connection may take before DuckDB spills to disk."""

    memory_limit: str = Field(
        default="4GB",
        description="DuckDB's memory_limit for every warehouse connection the platform opens "
        "(a size: 4GB, 1536MB). Past it, large joins and sorts spill to $DCICD_HOME/tmp "
        "instead of failing or taking 80% of the machine's memory (DuckDB's own default).",
    )

    @field_validator("memory_limit")
    @classmethod
    def _a_size(cls, value: str) -> str:
        if not _MEMORY.match(value):
            raise ValueError(f"{value!r} is not a size: give a number and a unit, 4GB or 512MB")
        return value.strip()


class Raw(_Strict):
    """How long raw.events keeps each delivery's payload."""

    retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Drop (set to NULL) the payloads of deliveries received longer ago than "
        "this many days, once every table built from them has merged them; their rows in "
        "raw.events and the derived tables stay. null: keep every payload forever.",
    )


class Monitoring(_Strict):
    """How the platform watches itself (failed runs alert whatever is set here)."""

    storage_alert_percent: float = Field(
        default=80,
        gt=0,
        le=100,
        description="Alert when the disk holding the warehouse is at least this full (percent).",
    )
    health_score_alert_below: float = Field(
        default=80,
        ge=0,
        le=100,
        description="A critical alert while the health score of `dcicd status` is under this.",
    )
    false_positive_rate_alert_above: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="A warning while a detector kind's live false-positive rate (anomalies an "
        "operator marked a false alarm, of those seen in the last `scorecard_days`) is over this.",
    )
    false_positive_min_anomalies: int = Field(
        default=10,
        ge=1,
        description="A kind's false-positive rate is judged once it raised at least this many.",
    )
    scorecard_days: int = Field(
        default=30, ge=1, description="The window of the autonomy scorecard and its rates."
    )


GATE_RULES = (
    "open_anomaly",
    "recent_rollback",
    "change_failure_rate",
    "workflows",
    "failure_risk",
    "change_size",
)


class Gate(_Strict):
    """The promotion gate (`dcicd gate`, `POST /gate`, GitHub's deployment protection rules):
    which rules it applies and their thresholds."""

    mode: Literal["off", "shadow", "enforce"] = Field(
        default="shadow",
        description="off: always go, no rule is read; shadow: always go, the rules' reasons "
        "recorded (what enforce would say); enforce: a rule that fails is a no-go.",
    )
    rules: list[Literal[GATE_RULES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(GATE_RULES),
        description="The rules applied; a rule left out is shown as not applied.",
    )
    anomaly_kinds: list[str] = Field(
        default_factory=lambda: ["deployment_health", "failure_rate"],
        description="open_anomaly: the ml.anomalies kinds that block while open.",
    )
    anomaly_severity: Severity = Field(
        default="critical", description="open_anomaly: the least severity that blocks."
    )
    anomaly_window_hours: float = Field(
        default=24,
        gt=0,
        description="open_anomaly: an open anomaly blocks when detected this recently, or "
        "when it is about the deployment now in production (an old deployment's health "
        "stays recorded, not blocking).",
    )
    cooldown_hours: float = Field(
        default=24,
        ge=0,
        description="recent_rollback: no promotion this long after an executed rollback of "
        "the service by the automation.",
    )
    required_workflows: list[str] = Field(
        default_factory=list,
        description="workflows: glob patterns on workflow names that must have a green run on "
        "the sha. Empty: every workflow that ran on it must be green.",
    )
    max_failure_risk: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="failure_risk: the highest predicted failure probability (1 - the "
        "build_outcome model's predicted success) allowed among the sha's runs.",
    )
    max_changes: int = Field(
        default=50, ge=0, description="change_size: the most commits a promotion may carry."
    )
    github_api_url: str = Field(
        default="https://api.github.com",
        description="Deployment protection rules are answered only at callback URLs under "
        "this address (DCICD_GITHUB_TOKEN goes nowhere else).",
    )


class Recommendations(_Strict):
    """When the warehouse's evidence is worth a recommendation (marts.recommendations).

    Every figure is counted over the trailing `window_days` (ending at as_of) and scaled to a
    30-day month; a recommendation whose expected saving is under `min_saving_minutes_per_month`
    and `min_saving_usd_per_month` both is not listed.
    """

    window_days: int = Field(default=30, ge=7, description="Days of evidence per figure.")
    history_weeks: int = Field(
        default=12,
        ge=0,
        description="Weekly checkpoints before as_of at which the same figures are computed "
        "again: a recommendation listed at one and no longer now is done, its saving measured.",
    )
    min_saving_minutes_per_month: float = Field(default=10, ge=0)
    min_saving_usd_per_month: float = Field(default=1, ge=0)
    min_executions: int = Field(
        default=5,
        ge=1,
        description="Executions a job (or runner label, step) needs in the "
        "window before its timings count as evidence.",
    )
    flaky_min_flakes: int = Field(
        default=2, ge=1, description="Flakes (failed, then passed on the same sha) in the window."
    )
    job_timeout_minutes: float = Field(
        default=360,
        gt=0,
        description="The job timeout when the workflow sets none: GitHub's default "
        "(jobs.<job_id>.timeout-minutes). Job payloads do not carry the configured one.",
    )
    timeout_ratio: float = Field(
        default=3,
        gt=1,
        description="A timeout at least this many times the job's P99 is far above it.",
    )
    timeout_headroom: float = Field(
        default=2, ge=1, description="The proposed timeout: the P99 of successful runs times this."
    )
    cache_min_step_seconds: float = Field(
        default=120, gt=0, description="A step at least this long (median) may be worth caching."
    )
    cache_max_variation: float = Field(
        default=0.15,
        gt=0,
        description="...and stable: its standard deviation at most this share of its mean.",
    )
    cache_step_pattern: str = Field(
        default=r"(?i)install|dependenc|set ?up|build|compile|download|restore|fetch|bundle"
        r"|npm ci|yarn|pip|poetry|gradle|maven|mvn|cargo|go mod|docker|apt",
        min_length=1,
        description="A regular expression (RE2, searched) on a step's name: the steps that "
        "fetch or build what a cache keeps (a test step is long and stable too, and no cache "
        "makes it shorter).",
    )
    cache_restore_seconds: float = Field(
        default=30, ge=0, description="What restoring a cache costs a run instead of the step."
    )
    queue_target_seconds: float = Field(
        default=60, ge=0, description="Queueing up to this long is fine; beyond it is waiting."
    )
    schedule_queue_ratio: float = Field(
        default=2,
        gt=1,
        description="A scheduled workflow whose jobs queue this many times longer than they "
        "would at the quietest hour is worth moving.",
    )
    hibernate_after_days: int = Field(
        default=14,
        ge=1,
        description="A non-production environment with no deployment for this many days is "
        "worth hibernating (the playbook's hibernation).",
    )
    environment_usd_per_hour: float = Field(
        default=0,
        ge=0,
        description="What a non-production environment costs an hour while it runs: the "
        "dollar saving of hibernating one (0: not known, minutes only).",
    )

    @field_validator("cache_step_pattern")
    @classmethod
    def _a_step_pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value


class PlatformConfig(_Strict):
    """Everything the platform can be told; see dcicd.example.yaml for each key."""

    services: list[Service] = Field(default_factory=list)
    attribution_window_days: int = Field(default=7, ge=0)
    ci_cost: CiCost = Field(default_factory=CiCost)
    kpi_targets: KpiTargets = Field(default_factory=KpiTargets)
    anomalies: AnomalyThresholds = Field(default_factory=AnomalyThresholds)
    automation: Automation = Field(default_factory=Automation)
    models: ModelQuality = Field(default_factory=ModelQuality)
    quality: Quality = Field(default_factory=Quality)
    history_import: HistoryImport = Field(default_factory=HistoryImport)
    freshness: Freshness = Field(default_factory=Freshness)
    reporting: Reporting = Field(default_factory=Reporting)
    dora: Dora = Field(default_factory=Dora)
    warehouse: Warehouse = Field(default_factory=Warehouse)
    raw: Raw = Field(default_factory=Raw)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    gate: Gate = Field(default_factory=Gate)
    recommendations: Recommendations = Field(default_factory=Recommendations)

    @model_validator(mode="after")
    def _names_are_unique(self) -> PlatformConfig:
        seen_services: set[str] = set()
        owner_of: dict[str, str] = {}
        for service in self.services:
            if service.name in seen_services:
                raise ValueError(f"service {service.name!r} is configured twice")
            seen_services.add(service.name)
        paths_of = {service.name: service.paths for service in self.services}
        for service in self.services:
            for repo in service.repositories:
                # A repository several services share is split between them by their paths.
                shared = repo in owner_of and owner_of[repo] != service.name
                if repo in owner_of and not (shared and paths_of[owner_of[repo]] and service.paths):
                    raise ValueError(
                        f"repository {repo!r} belongs to both {owner_of[repo]!r} "
                        f"and {service.name!r}: services sharing a repository each name "
                        "their `paths`"
                    )
                owner_of.setdefault(repo, service.name)
        return self

    def path_repositories(self) -> set[str]:
        """The repositories a service with `paths` lists: their commits' files are needed."""
        return {repo for s in self.services if s.paths for repo in s.repositories}


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def config_path() -> Path | None:
    """DCICD_CONFIG when set (it must exist), else ./dcicd.yaml when present, else None."""
    configured = os.environ.get("DCICD_CONFIG")
    if configured:
        return Path(configured)
    local = Path("dcicd.yaml")
    return local if local.exists() else None


def parse_config(text: str, source: str = "<text>") -> PlatformConfig:
    """Parse YAML text into a validated configuration, or raise ConfigError naming the key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping of keys, not {type(data).__name__}")
    try:
        return PlatformConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source} has invalid configuration:\n{_describe(exc)}") from exc


def load_config(path: Path | None = None) -> PlatformConfig:
    """The configuration from a file, DCICD_CONFIG, ./dcicd.yaml, or the built-in defaults."""
    path = path or config_path()
    if path is None:
        return PlatformConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from exc
    return parse_config(text, str(path))
