"""A seeded simulation of the sample organisation, written as landing envelope files.

Day by day, each service pushes commits, runs CI (with flaky jobs, a slow regression and a
cost spike where its profile says so), deploys some green builds (some of them bad: health
degrades, an incident opens, often a rollback follows) and reports health samples around
every production deployment. On GitHub, a push to main that pull-request runs went with lands
a pull request: its commits pushed to a feature branch, opened, reviewed (in rounds, or only
by its author now and then) and merged by that push. The same seed and end date give the same
files, byte for byte.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dcicd_platform.demo import payloads as pl
from dcicd_platform.demo.organisation import SERVICES, JobProfile, ServiceProfile
from dcicd_platform.files import replaced_whole
from dcicd_platform.ingest.envelope import envelope_line, make_envelope, rfc3339

AUTHORS = ("ana", "bo", "chen", "dita", "emeka", "fatima", "gus", "hiro", "ines", "jonas")
MESSAGES = ("fix", "refactor", "add metrics to", "speed up", "tidy", "harden", "document")
AREAS = ("handler", "client", "cache", "schema", "retry logic", "config", "tests", "logging")


@dataclass(order=True)
class Event:
    at: datetime
    source: str = field(compare=False)
    event_type: str = field(compare=False)
    payload: dict[str, Any] = field(compare=False)
    delivery_id: str = field(compare=False, default="")


@dataclass
class ServiceState:
    """What a service has deployed so far: the sha in production and the last good one."""

    head: str = "0" * 40
    prod_sha: str | None = None
    good_sha: str | None = None


class Simulation:
    """Generates every event of the organisation over a span of days."""

    def __init__(self, seed: int, days: int, end: datetime) -> None:
        self.rng = random.Random(seed)
        self.days = days
        self.start = (end - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.events: list[Event] = []
        self.ids = {
            "run": 9_100_000_000,
            "job": 31_000_000_000,
            "deploy": 2_400_000_000,
            "status": 8_800_000_000,
            "pipeline": 1_200_000,
            "build": 7_700_000,
            "gl_deploy": 5000,
            "issue": 3_100_000_000,
            "incident": 0,
        }
        self.run_numbers: dict[str, int] = {}
        # Pull requests draw from their own stream, so the rest of the organisation is the
        # same with or without them.
        self.pr_rng = random.Random(f"pull-requests-{seed}")
        self.pr_numbers: dict[str, int] = {}
        self.pushed: list[tuple[str, str, str, datetime]] = []
        # What was injected, for judging the detectors: one entry per production deployment
        # with health samples (bad or not).
        self.deployments: list[dict] = []

    # -- helpers ------------------------------------------------------------------------------
    def next_id(self, kind: str) -> int:
        self.ids[kind] += 1 + (self.rng.randrange(7) if kind in ("run", "job") else 0)
        return self.ids[kind]

    def sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def emit(
        self,
        at: datetime,
        source: str,
        event_type: str,
        payload: dict,
        rng: random.Random | None = None,
    ) -> None:
        rng = rng or self.rng
        delivery = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        received = at + timedelta(seconds=rng.uniform(0.2, 3.0))
        self.events.append(Event(received, source, event_type, payload, delivery))

    def poisson(self, mean: float) -> int:
        """A Poisson draw (Knuth's method: fine for the small means used here)."""
        limit, count, product = math.exp(-mean), 0, self.rng.random()
        while product > limit:
            count += 1
            product *= self.rng.random()
        return count

    def minutes(self, median: float, sigma: float = 0.25) -> timedelta:
        return timedelta(minutes=median * math.exp(self.rng.gauss(0, sigma)))

    # -- the simulation -----------------------------------------------------------------------
    def run(self) -> list[Event]:
        for profile in SERVICES:
            state = ServiceState()
            for day in range(self.days):
                self.simulate_day(profile, state, day)
            self.background_incidents(profile)
        self.events.sort()
        return self.events

    def push_times(self, profile: ServiceProfile, day: int) -> list[datetime]:
        date = self.start + timedelta(days=day)
        weekend = date.weekday() >= 5
        count = self.poisson(profile.pushes_per_day * (0.15 if weekend else 1.0))
        times = [date + timedelta(hours=self.rng.uniform(8, 19)) for _ in range(count)]
        return sorted(times)

    def simulate_day(self, profile: ServiceProfile, state: ServiceState, day: int) -> None:
        for pushed_at in self.push_times(profile, day):
            sha = self.push(profile, state, pushed_at)
            commits = self.pushed
            conclusion, finished = self.ci_run(profile, "main", sha, pushed_at, day, "push")
            branches = []
            for _ in range(self.poisson(profile.branch_runs_per_push)):
                branch = (
                    f"feature/{self.rng.choice(AREAS).replace(' ', '-')}-{self.rng.randrange(999)}"
                )
                branches.append(branch)
                self.ci_run(
                    profile, branch, self.sha(), pushed_at - timedelta(hours=2), day, "pull_request"
                )
            if branches and profile.provider == "github":
                self.pull_request(profile, branches[0], commits, pushed_at)
            if conclusion == "success" and self.rng.random() < profile.deploy_p:
                self.deploy(profile, state, sha, finished + self.minutes(5, 0.5))

    def push(self, profile: ServiceProfile, state: ServiceState, at: datetime) -> str:
        author = self.rng.choice(AUTHORS)
        commits = []
        for _ in range(self.rng.choice((1, 1, 1, 2, 2, 3))):
            # Most commits are made shortly before the push; some sat on a branch for days.
            age = (
                timedelta(days=self.rng.uniform(1, 5))
                if self.rng.random() < 0.06
                else timedelta(minutes=self.rng.uniform(2, 180))
            )
            message = f"{self.rng.choice(MESSAGES)} {self.rng.choice(AREAS)}"
            commits.append((self.sha(), message, author, at - age))
        commits.sort(key=lambda c: c[3])
        if profile.provider == "gitlab":
            project = pl.gitlab_project(profile.repo)
            body = [
                {
                    "id": s,
                    "message": m,
                    "timestamp": rfc3339(t),
                    "author": {"name": a, "email": f"{a}@example.com"},
                }
                for s, m, a, t in commits
            ]
            self.emit(
                at, "gitlab", "push", pl.gitlab_push(project, "main", state.head, body, author)
            )
        else:
            repo = pl.github_repository(profile.repo)
            body = [pl.github_commit(s, m, a, t) for s, m, a, t in commits]
            self.emit(
                at, "github", "push", pl.github_push(repo, "main", state.head, body, at, author)
            )
        state.head = commits[-1][0]
        self.pushed = commits
        return state.head

    def pull_request(
        self,
        profile: ServiceProfile,
        branch: str,
        commits: list[tuple[str, str, str, datetime]],
        merged: datetime,
    ) -> None:
        """The pull request a push to main merged: its commits (sha, message, author, time)
        pushed to the branch, opened, reviewed and merged at the push, with the branch's head
        as its merge commit (main takes the commits themselves)."""
        rng, repo = self.pr_rng, pl.github_repository(profile.repo)
        author, head = commits[-1][2], commits[-1][0]
        pushed = commits[-1][3] + (merged - commits[-1][3]) * rng.uniform(0.1, 0.5)
        body = [pl.github_commit(s, m, a, t) for s, m, a, t in commits]
        push = pl.github_push(repo, branch, "0" * 40, body, pushed, author)
        self.emit(pushed, "github", "push", push, rng)
        opened = pushed + (merged - pushed) * rng.uniform(0.05, 0.3)
        number = self.pr_numbers[profile.repo] = self.pr_numbers.get(profile.repo, 100) + 1
        title = commits[0][1].capitalize()
        size = (rng.randrange(5, 400), rng.randrange(0, 150), rng.randrange(1, 12))

        def pull(action: str, at: datetime, done: datetime | None = None) -> dict:
            payload = pl.github_pull_request(
                repo, number, title, author, branch, head, "main", action, opened, at, done,
                done, head if done else self.sha_from(rng), size,
            )  # fmt: skip
            self.emit(at, "github", "pull_request", payload, rng)
            return payload

        opened_payload = pull("opened", opened)
        review_id = number * 100
        if rng.random() < 0.12:
            # Approved by its author only: nobody else picked it up.
            at = opened + (merged - opened) * rng.uniform(0.3, 0.9)
            review = pl.github_pull_request_review(
                opened_payload, review_id, author, "approved", at
            )
            self.emit(at, "github", "pull_request_review", review, rng)
        else:
            reviewer = rng.choice([a for a in AUTHORS if a != author])
            at = opened + (merged - opened) * rng.uniform(0.1, 0.6)
            if rng.random() < 0.3:  # a first round asks for changes
                review = pl.github_pull_request_review(
                    opened_payload, review_id, reviewer, "changes_requested", at
                )
                self.emit(at, "github", "pull_request_review", review, rng)
                review_id += 1
                at += (merged - at) * rng.uniform(0.3, 0.8)
            review = pl.github_pull_request_review(
                opened_payload, review_id, reviewer, "approved", at
            )
            self.emit(at, "github", "pull_request_review", review, rng)
        pull("closed", merged, merged)

    @staticmethod
    def sha_from(rng: random.Random) -> str:
        return f"{rng.getrandbits(160):040x}"

    def job_plan(self, profile: ServiceProfile, day: int) -> list[tuple[JobProfile, float]]:
        """(job, duration factor) for one run: regressions and cost spikes change the plan."""
        plan = []
        for job in profile.jobs:
            factor = 1.0
            if (
                profile.regression_from_day is not None
                and job.name == profile.regression_job
                and day >= profile.regression_from_day
            ):
                factor = 1.7
            copies = 1
            if (
                profile.cost_spike_days
                and job.name == profile.cost_spike_job
                and profile.cost_spike_days[0] <= day <= profile.cost_spike_days[1]
            ):
                copies, factor = 3, 1.5
            plan.extend([(job, factor)] * copies)
        return plan

    def ci_run(
        self, profile: ServiceProfile, branch: str, sha: str, at: datetime, day: int, trigger: str
    ) -> tuple[str, datetime]:
        created = at + timedelta(seconds=self.rng.uniform(3, 20))
        plan = self.job_plan(profile, day)
        outcomes = []
        for job, factor in plan:
            real = self.rng.random() < job.fail_p
            flake = not real and self.rng.random() < job.flaky_p
            outcomes.append((job, factor, "failure" if real or flake else "success", flake))
        finished = self.emit_attempt(profile, branch, sha, created, outcomes, 1, trigger)
        conclusion = "failure" if any(o[2] == "failure" for o in outcomes) else "success"
        flaky_only = conclusion == "failure" and all(o[3] for o in outcomes if o[2] == "failure")
        if flaky_only and profile.provider == "github":
            # Someone re-runs the failed jobs; the flaky ones pass the second time.
            retry = [
                (job, factor, "success", False)
                for job, factor, result, _ in outcomes
                if result == "failure"
            ]
            finished = self.emit_attempt(
                profile,
                branch,
                sha,
                finished + self.minutes(8, 0.5),
                retry,
                2,
                trigger,
                run_id=self.ids["run"],
            )
            conclusion = "success"
        return conclusion, finished

    @staticmethod
    def pace(job: JobProfile, trigger: str, start: datetime) -> float:
        """What makes a job slower or faster beyond chance: pull requests run only the tests
        their change touches, and shared runners are slower in the busy hours (13-18 UTC)."""
        pace = 0.7 if trigger == "pull_request" and job.stage == "test" else 1.0
        if 13 <= start.hour < 18 and "self-hosted" not in job.labels:
            pace *= 1.25
        return pace

    def queue_delay(self, labels: tuple[str, ...]) -> timedelta:
        if "self-hosted" in labels:
            return timedelta(seconds=self.rng.expovariate(1 / 90))
        if any(label.startswith("macos") for label in labels):
            return timedelta(seconds=self.rng.expovariate(1 / 60))
        return timedelta(seconds=self.rng.uniform(2, 25))

    def emit_attempt(
        self,
        profile: ServiceProfile,
        branch: str,
        sha: str,
        created: datetime,
        outcomes: list,
        attempt: int,
        trigger: str,
        run_id: int | None = None,
    ) -> datetime:
        jobs = []
        started = created + timedelta(seconds=self.rng.uniform(1, 6))
        for job, factor, result, _ in outcomes:
            job_start = started + self.queue_delay(job.labels)
            duration = self.minutes(job.minutes * factor * self.pace(job, trigger, job_start), 0.15)
            if result == "failure":
                duration *= self.rng.uniform(0.3, 1.0)
            jobs.append((job, result, started, job_start, job_start + duration))
        finished = max(j[4] for j in jobs) + timedelta(seconds=self.rng.uniform(1, 5))
        conclusion = "failure" if any(j[1] == "failure" for j in jobs) else "success"
        if profile.provider == "gitlab":
            self.emit_gitlab_pipeline(profile, branch, sha, created, finished, jobs, conclusion)
            return finished
        repo = pl.github_repository(profile.repo)
        run_id = run_id or self.next_id("run")
        number = self.run_numbers.setdefault(profile.repo, 0) + (attempt == 1)
        self.run_numbers[profile.repo] = number
        actor = self.rng.choice(AUTHORS)
        args = (
            repo,
            run_id,
            attempt,
            number,
            "ci",
            ".github/workflows/ci.yml",
            trigger,
            branch,
            sha,
            actor,
        )
        runs = [(job.name, job.labels, *timing) for job, *timing in jobs]
        # Build jobs install their dependencies first, in about the same time every run.
        installs = {job.name: job.minutes * 60 * 0.45 for job, *_ in jobs if job.stage == "build"}
        self.emit_github_run(args, created, started, finished, conclusion, runs, installs)
        return finished

    def emit_github_run(
        self,
        args: tuple,
        created: datetime,
        started: datetime,
        finished: datetime,
        conclusion: str,
        jobs: list[tuple],
        installs: dict[str, float] | None = None,
    ) -> None:
        """One GitHub Actions run as its webhooks arrive: requested, each job completed, the run
        completed. args: github_workflow_run's first ten (repo, id, attempt, number, workflow,
        path, event, branch, sha, actor); jobs: (name, labels, result, queued, started, ended)."""
        repo, run_id, attempt, _, workflow, _, _, branch, sha, _ = args
        self.emit(
            created,
            "github",
            "workflow_run",
            pl.github_workflow_run(*args, "queued", None, created, started, created, "requested"),
        )
        for name, labels, result, queued, job_start, job_end in jobs:
            job_id = self.next_id("job")
            steps = None
            if installs and name in installs:
                steps = timed_steps(name, job_start, job_end, installs[name], job_id)
            self.emit(
                job_end,
                "github",
                "workflow_job",
                pl.github_workflow_job(
                    repo,
                    job_id,
                    run_id,
                    attempt,
                    workflow,
                    name,
                    sha,
                    branch,
                    list(labels),
                    result,
                    queued,
                    job_start,
                    job_end,
                    steps,
                ),
            )
        self.emit(
            finished,
            "github",
            "workflow_run",
            pl.github_workflow_run(
                *args, "completed", conclusion, created, started, finished, "completed"
            ),
        )

    def emit_gitlab_pipeline(self, profile, branch, sha, created, finished, jobs, conclusion):
        project = pl.gitlab_project(profile.repo)
        pipeline_id = self.next_id("pipeline")
        builds = []
        for job, result, queued, job_start, job_end in jobs:
            status = "success" if result == "success" else "failed"
            build_id = self.next_id("build")
            builds.append(
                pl.gitlab_build_entry(
                    build_id,
                    job.name,
                    job.stage,
                    status,
                    queued,
                    job_start,
                    job_end,
                    list(job.labels),
                    True,
                )
            )
            self.emit(
                job_end,
                "gitlab",
                "build",
                {
                    "object_kind": "build",
                    "ref": branch,
                    "tag": False,
                    "sha": sha,
                    "build_id": build_id,
                    "build_name": job.name,
                    "build_stage": job.stage,
                    "build_status": status,
                    "build_created_at": queued.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    "build_started_at": job_start.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    "build_finished_at": job_end.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    "build_duration": (job_end - job_start).total_seconds(),
                    "build_queued_duration": (job_start - queued).total_seconds(),
                    "pipeline_id": pipeline_id,
                    "project_id": project["id"],
                    "project_name": profile.repo.replace("/", " / "),
                    "runner": builds[-1]["runner"],
                    "repository": {"name": project["name"], "homepage": project["web_url"]},
                },
            )
        user = self.rng.choice(AUTHORS)
        status = "success" if conclusion == "success" else "failed"
        self.emit(
            created,
            "gitlab",
            "pipeline",
            pl.gitlab_pipeline(
                project, pipeline_id, branch, sha, "pending", created, None, None, 0, [], user
            ),
        )
        self.emit(
            finished,
            "gitlab",
            "pipeline",
            pl.gitlab_pipeline(
                project,
                pipeline_id,
                branch,
                sha,
                status,
                created,
                finished,
                (finished - created).total_seconds() - 5,
                5.0,
                builds,
                user,
            ),
        )

    # -- deployments --------------------------------------------------------------------------
    def deploy(
        self,
        profile: ServiceProfile,
        state: ServiceState,
        sha: str,
        at: datetime,
        rollback: bool = False,
    ) -> None:
        if profile.staging and not rollback:
            self.deployment(profile, sha, "staging", at, "success")
            at += self.minutes(12, 0.3)
        if profile.deploy_workflow:
            deployed = self.workflow_deploy(profile, sha, at)
        else:
            if not rollback and self.rng.random() < 0.03:
                self.deployment(profile, sha, profile.environments[0], at, "failure")
                return
            deployed = at
            for environment in profile.environments:
                deployed = self.deployment(profile, sha, environment, at, "success")
                at = deployed + self.minutes(6, 0.3)
        bad = not rollback and self.rng.random() < profile.bad_deploy_p
        self.health_samples(profile, deployed, bad)
        self.deployments.append(
            {"service": profile.name, "sha": sha, "deployed_at": deployed, "bad": bad}
        )
        state.prod_sha = sha
        if not bad:
            state.good_sha = sha
            return
        opened = deployed + self.minutes(12, 0.4)
        rolled_back = state.good_sha is not None and self.rng.random() < profile.rollback_p
        resolved = opened + (self.minutes(25, 0.4) if rolled_back else self.minutes(180, 0.6))
        self.incident(profile, opened, resolved, sha, f"Error rate up after deploying {sha[:8]}")
        if rolled_back:
            self.deploy(profile, state, state.good_sha, deployed + self.minutes(20, 0.3), True)

    def deployment(
        self, profile: ServiceProfile, sha: str, environment: str, at: datetime, outcome: str
    ) -> datetime:
        done = at + self.minutes(4, 0.3)
        creator = self.rng.choice(AUTHORS)
        if profile.provider == "gitlab":
            project = pl.gitlab_project(profile.repo)
            deployment_id = self.next_id("gl_deploy")
            self.emit(
                at,
                "gitlab",
                "deployment",
                pl.gitlab_deployment(
                    project, deployment_id, sha, environment, "running", at, creator
                ),
            )
            status = "success" if outcome == "success" else "failed"
            self.emit(
                done,
                "gitlab",
                "deployment",
                pl.gitlab_deployment(
                    project, deployment_id, sha, environment, status, done, creator
                ),
            )
            return done
        repo = pl.github_repository(profile.repo)
        deployment_id = self.next_id("deploy")
        for state, when in (("in_progress", at), (outcome, done)):
            self.emit(
                when,
                "github",
                "deployment_status",
                pl.github_deployment_status(
                    repo,
                    deployment_id,
                    self.next_id("status"),
                    sha,
                    environment,
                    state,
                    at,
                    when,
                    creator,
                ),
            )
        return done

    def workflow_deploy(self, profile: ServiceProfile, sha: str, at: datetime) -> datetime:
        repo = pl.github_repository(profile.repo)
        run_id = self.next_id("run")
        number = self.run_numbers.setdefault(profile.repo + ":deploy", 0) + 1
        self.run_numbers[profile.repo + ":deploy"] = number
        started = at + timedelta(seconds=5)
        job_start = started + self.queue_delay(("ubuntu-latest",))
        job_end = job_start + self.minutes(3, 0.3)
        finished = job_end + timedelta(seconds=3)
        args = (
            repo,
            run_id,
            1,
            number,
            profile.deploy_workflow,
            f".github/workflows/{profile.deploy_workflow}.yml",
            "workflow_dispatch",
            "main",
            sha,
            self.rng.choice(AUTHORS),
        )
        deploy = [("deploy", ("ubuntu-latest",), "success", started, job_start, job_end)]
        self.emit_github_run(args, at, started, finished, "success", deploy)
        return finished

    def health_samples(self, profile: ServiceProfile, deployed: datetime, bad: bool) -> None:
        """Every 5 minutes from 30 minutes before a deployment to 30 minutes after it."""
        environment = profile.environments[0] if profile.environments else "production"
        # A service's normal error rate and latency are its own, the same before every deploy.
        steady = random.Random(profile.name)
        base_rate, base_latency = steady.uniform(0.002, 0.008), steady.uniform(120, 400)
        for step in range(-6, 7):
            ts = deployed + timedelta(minutes=5 * step)
            after = step > 0
            requests = int(self.rng.uniform(2000, 6000))
            rate = base_rate * (
                self.rng.uniform(5, 12) if bad and after else self.rng.uniform(0.7, 1.3)
            )
            latency = base_latency * (
                self.rng.uniform(1.4, 2.0) if bad and after else self.rng.uniform(0.9, 1.1)
            )
            errors = int(requests * rate * self.rng.uniform(0.8, 1.2))
            self.emit(
                ts,
                "metrics",
                "health_sample",
                {
                    "service": profile.name,
                    "environment": environment,
                    "ts": rfc3339(ts),
                    "requests": requests,
                    "errors": min(errors, requests),
                    "latency_p95_ms": round(latency, 1),
                },
            )

    # -- incidents ----------------------------------------------------------------------------
    def incident(
        self,
        profile: ServiceProfile,
        opened: datetime,
        resolved: datetime,
        sha: str | None,
        title: str,
    ) -> None:
        if profile.pagerduty:
            service_id, service_name = profile.pagerduty
            self.ids["incident"] += 1
            number = self.ids["incident"]
            incident_id = f"Q{self.rng.getrandbits(48):012X}"
            for event_type, at in (
                ("incident.triggered", opened),
                ("incident.acknowledged", opened + timedelta(minutes=4)),
                ("incident.resolved", resolved),
            ):
                event_id = f"01{self.rng.getrandbits(100):025X}"[:26]
                self.emit(
                    at,
                    "pagerduty",
                    event_type,
                    pl.pagerduty_incident_event(
                        event_id,
                        event_type,
                        incident_id,
                        number,
                        title,
                        service_id,
                        service_name,
                        at,
                    ),
                )
        elif profile.incident_issues:
            repo = pl.github_repository(profile.repo)
            issue_id = self.next_id("issue")
            number = issue_id % 10000
            body = "Customers see errors at checkout."
            if sha and self.rng.random() < 0.6:
                body += f"\n\nRoot cause: {sha}"
            labels = ["incident", "sev2"]
            self.emit(
                opened,
                "github",
                "issues",
                pl.github_issue(
                    repo,
                    issue_id,
                    number,
                    title,
                    body,
                    labels,
                    "open",
                    opened,
                    None,
                    opened,
                    "opened",
                ),
            )
            self.emit(
                resolved,
                "github",
                "issues",
                pl.github_issue(
                    repo,
                    issue_id,
                    number,
                    title,
                    body,
                    labels,
                    "closed",
                    opened,
                    resolved,
                    resolved,
                    "closed",
                ),
            )

    def background_incidents(self, profile: ServiceProfile) -> None:
        """Incidents no deployment caused: an upstream outage, a full disk."""
        for _ in range(self.rng.randrange(0, 3)):
            opened = self.start + timedelta(
                days=self.rng.uniform(0, self.days), hours=self.rng.uniform(0, 6)
            )
            self.incident(
                profile, opened, opened + self.minutes(50, 0.6), None, "Upstream provider degraded"
            )


def timed_steps(
    name: str, start: datetime, end: datetime, install_s: float, job_id: int
) -> list[tuple[str, datetime, datetime]]:
    """A build job's steps: set-up, checkout, installing its dependencies (the same time every
    run within 5%, from the job's id: no draw of the generator's random stream, so the rest of
    the organisation is what it was), then the build in what time is left."""
    install_s = install_s * (1 + ((job_id % 11) - 5) / 100)
    marks = [start, start + timedelta(seconds=2), start + timedelta(seconds=5)]
    marks.append(min(end, marks[-1] + timedelta(seconds=install_s)))
    marks.append(max(end, marks[-1]))
    names = ["Set up job", "Run actions/checkout@v4", "Install dependencies", name]
    return [(step, marks[i], marks[i + 1]) for i, step in enumerate(names)]


def generate_events(seed: int = 7, days: int = 90, end: datetime | None = None) -> list[Event]:
    """Every event of the sample organisation, in time order."""
    end = end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Simulation(seed, days, end).run()


def _envelopes(events: list[Event]) -> Iterator[bytes]:
    for e in events:
        yield envelope_line(make_envelope(e.delivery_id, e.source, e.event_type, e.payload, e.at))


def generate_organisation(
    folder: Path, seed: int = 7, days: int = 90, end: datetime | None = None
) -> list[Path]:
    """Write the organisation's events as landing files: one per source per 30 days."""
    events = generate_events(seed, days, end)
    folder.mkdir(parents=True, exist_ok=True)
    start = events[0].at if events else datetime.now(UTC)
    groups: dict[tuple[str, int], list[Event]] = {}
    for e in events:
        groups.setdefault((e.source, (e.at - start).days // 30), []).append(e)
    written = []
    for (source, _period), group in sorted(groups.items()):
        first = group[0].at.strftime("%Y%m%d")
        path = folder / f"{source}-{first}-s{seed}.ndjson"
        with replaced_whole(path) as partial, partial.open("wb") as handle:
            handle.writelines(_envelopes(group))
        written.append(path)
    return written
