"""The sample organisation: eight services with different habits, and its configuration."""

from __future__ import annotations

from dataclasses import dataclass, field

UBUNTU = ("ubuntu-latest",)
MACOS = ("macos-14",)
SELF_HOSTED = ("self-hosted", "linux", "x64")


@dataclass(frozen=True)
class JobProfile:
    """A CI job: its median minutes, its runner, and how often it fails for real or flakes."""

    name: str
    minutes: float
    labels: tuple[str, ...] = UBUNTU
    fail_p: float = 0.02
    flaky_p: float = 0.0
    stage: str = "test"


@dataclass(frozen=True)
class ServiceProfile:
    """How a team works: how often it pushes and deploys, and what goes wrong for it."""

    name: str
    repo: str
    team: str
    criticality: str
    jobs: tuple[JobProfile, ...]
    provider: str = "github"
    pushes_per_day: float = 3.0
    deploy_p: float = 0.4
    environments: tuple[str, ...] = ("production",)
    staging: bool = False
    deploy_workflow: str | None = None
    bad_deploy_p: float = 0.05
    rollback_p: float = 0.7
    pagerduty: tuple[str, str] | None = None
    incident_issues: bool = False
    regression_from_day: int | None = None
    regression_job: str = ""
    cost_spike_days: tuple[int, int] | None = None
    cost_spike_job: str = ""
    branch_runs_per_push: float = 1.0
    extra_labels: dict[str, str] = field(default_factory=dict)


SERVICES: tuple[ServiceProfile, ...] = (
    ServiceProfile(
        "payments-api",
        "acme/payments-api",
        "payments",
        "critical",
        jobs=(
            JobProfile("lint", 1.5, stage="lint"),
            JobProfile("unit-tests", 6),
            JobProfile("integration-tests", 9, flaky_p=0.03),
            JobProfile("build-image", 4, stage="build"),
        ),
        pushes_per_day=4,
        deploy_p=0.5,
        staging=True,
        bad_deploy_p=0.08,
        pagerduty=("PPAY001", "Payments API"),
    ),
    ServiceProfile(
        "checkout-web",
        "acme/checkout-web",
        "storefront",
        "high",
        jobs=(
            JobProfile("lint", 1),
            JobProfile("unit-tests", 4),
            JobProfile("e2e-tests", 12, flaky_p=0.08, fail_p=0.03),
            JobProfile("build", 3, stage="build"),
        ),
        pushes_per_day=7,
        deploy_p=0.7,
        bad_deploy_p=0.04,
        incident_issues=True,
    ),
    ServiceProfile(
        "search-service",
        "acme/search-service",
        "discovery",
        "medium",
        jobs=(
            JobProfile("unit-tests", 5),
            JobProfile("index-tests", 8),
            JobProfile("build", 4, stage="build"),
        ),
        pushes_per_day=3,
        deploy_p=0.4,
        environments=("prod-eu", "prod-us"),
        bad_deploy_p=0.05,
        pagerduty=("PSRCH01", "Search"),
    ),
    ServiceProfile(
        "notifications",
        "acme/notifications",
        "platform",
        "low",
        jobs=(JobProfile("lint", 1), JobProfile("test", 3)),
        pushes_per_day=1.5,
        deploy_p=0.25,
        environments=(),
        deploy_workflow="deploy",
        bad_deploy_p=0.03,
    ),
    ServiceProfile(
        "data-pipeline",
        "acme/data-pipeline",
        "data",
        "medium",
        jobs=(
            JobProfile("lint", 2),
            JobProfile("build", 18, labels=SELF_HOSTED, stage="build"),
            JobProfile("test", 25, labels=SELF_HOSTED, fail_p=0.04),
        ),
        pushes_per_day=2,
        deploy_p=0.3,
        bad_deploy_p=0.05,
        regression_from_day=60,
        regression_job="build",
    ),
    ServiceProfile(
        "mobile-backend",
        "acme/mobile-backend",
        "mobile",
        "high",
        jobs=(
            JobProfile("unit-tests", 5),
            JobProfile("ios-build", 14, labels=MACOS, stage="build"),
            JobProfile("android-build", 10, stage="build"),
        ),
        pushes_per_day=3,
        deploy_p=0.3,
        bad_deploy_p=0.04,
        cost_spike_days=(40, 47),
        cost_spike_job="ios-build",
    ),
    ServiceProfile(
        "inventory",
        "acme/inventory",
        "supply",
        "medium",
        provider="gitlab",
        jobs=(
            JobProfile("build", 4, labels=("docker", "linux"), stage="build"),
            JobProfile("test", 7, labels=("docker", "linux")),
        ),
        pushes_per_day=3,
        deploy_p=0.5,
        staging=True,
        bad_deploy_p=0.05,
        pagerduty=("PINV001", "Inventory"),
        branch_runs_per_push=0.5,
    ),
    ServiceProfile(
        "identity",
        "acme/identity",
        "security",
        "critical",
        jobs=(
            JobProfile("lint", 1),
            JobProfile("unit-tests", 5),
            JobProfile("auth-integration", 10, flaky_p=0.12),
        ),
        pushes_per_day=2.5,
        deploy_p=0.4,
        bad_deploy_p=0.10,
        pagerduty=("PIDN001", "Identity"),
    ),
)


def demo_config_yaml() -> str:
    """The configuration of the sample organisation, as a user would write it."""
    lines = [
        "# The sample organisation's configuration, written by `dcicd demo`.",
        "# Every key is documented in dcicd.example.yaml.",
        "services:",
    ]
    for s in SERVICES:
        lines += [
            f"  - name: {s.name}",
            f"    repositories: [{s.repo}]",
            f"    team: {s.team}",
            f"    criticality: {s.criticality}",
        ]
        if s.deploy_workflow:
            lines.append(f"    deployment_workflows: [{s.deploy_workflow}]")
        if s.pagerduty:
            lines.append(f"    pagerduty_services: [{s.pagerduty[0]}]")
        if s.name == "mobile-backend":
            lines.append("    monthly_ci_budget_usd: 400")
        if s.name == "payments-api":
            lines.append("    ci_budget_usd_per_deployment: 1.50")
    lines += [
        "automation:",
        "  mode: shadow  # decide and audit, execute nothing",
        "  act_on_anomalies_within_hours: 168  # the demo acts on its last week",
        "gate:",
        "  mode: shadow  # always go, every reason recorded; enforce blocks on a failing rule",
    ]
    return "\n".join(lines) + "\n"
