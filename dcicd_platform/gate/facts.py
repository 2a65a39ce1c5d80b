"""What the gate's rules read: a handful of queries into an index, and the facts of one
promotion looked up in it.

`Index.read(conn)` runs the same few queries whether it reads one service (the command line:
narrowed by service and sha, a few milliseconds) or the whole organisation (the receiver's
index, read again when the warehouse changes, so that a gate over HTTP costs dictionary
lookups, not queries). A table a later step creates (ml.anomalies before the first watch,
ops.actions before the first action) is simply absent: its rule has no data.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dcicd_platform.config import Gate
from dcicd_platform.gate.rules import Anomaly, Facts, Rollback, Run

# Each query: (the table it needs, SQL). $service and $sha are NULL for the whole organisation.
QUERIES = {
    "anomalies": (
        "ml.anomalies",
        "SELECT service, anomaly_key, kind, severity, detected_at, explanation, entity_key"
        " FROM ml.anomalies WHERE cleared_at IS NULL"
        " AND ($service IS NULL OR service = $service)",
    ),
    "rollbacks": (
        "ops.actions",
        "SELECT service, action_id, coalesce(finished_at, requested_at), coalesce(target, '')"
        " FROM ops.actions WHERE kind = 'rollback' AND decision = 'executed'"
        " AND ($service IS NULL OR service = $service)",
    ),
    "change_failure_rate": (
        "marts.kpi_scorecard",
        "SELECT scope, target, actual, status FROM marts.kpi_scorecard"
        " WHERE kpi = 'change_failure_rate' AND ($service IS NULL OR scope = $service)",
    ),
    # The latest attempt of each workflow on each sha, with the outcome model's prediction.
    "runs": (
        "core.pipeline_runs",
        "SELECT r.service, r.sha, r.workflow, r.status, r.conclusion,"
        " 1 - p.predicted_success_proba"
        " FROM (SELECT * FROM core.pipeline_runs WHERE ($service IS NULL OR service = $service)"
        "   AND ($sha IS NULL OR sha = $sha)"
        "   QUALIFY row_number() OVER (PARTITION BY service, sha, workflow"
        "     ORDER BY attempt DESC, started_at DESC NULLS LAST, run_key DESC) = 1) r"
        " LEFT JOIN {predictions} p ON p.run_key = r.run_key AND p.model_name = 'build_outcome'",
    ),
    # Every deployment, whether it reached production, and its change set's size.
    "deployments": (
        "core.deployments",
        "SELECT d.service, d.sha, d.deployment_key, d.is_production AND d.status = 'success',"
        " d.deployed_at, {changes} FROM core.deployments d"
        " WHERE ($service IS NULL OR d.service = $service)",
    ),
    "repositories": (
        "core.pipeline_runs",
        "SELECT DISTINCT service, repo FROM core.pipeline_runs"
        " WHERE $service IS NULL OR service = $service"
        " UNION SELECT DISTINCT service, repo FROM core.deployments"
        " WHERE $service IS NULL OR service = $service",
    ),
    # Pushed commits in push order (core.commits.push_seq orders each branch's pushes).
    "commits": (
        "core.commits",
        "SELECT repo, branch, sha, push_seq FROM core.commits WHERE $service IS NULL"
        " OR sha = $sha OR repo IN (SELECT repo FROM core.pipeline_runs WHERE service = $service"
        "   UNION SELECT repo FROM core.deployments WHERE service = $service)",
    ),
}


def existing_tables(conn) -> set[str]:
    return {
        f"{schema}.{table}"
        for schema, table in conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables()"
            " WHERE schema_name IN ('ml', 'ops', 'marts', 'core')"
        ).fetchall()
    }


@dataclass
class Deployment:
    key: str
    production: bool
    deployed_at: datetime | None
    changes: int | None


@dataclass
class Index:
    """The warehouse's facts for the gate, by service and sha."""

    anomalies: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    rollbacks: dict[str, list[Rollback]] = field(default_factory=lambda: defaultdict(list))
    change_failure_rate: dict[str, tuple] = field(default_factory=dict)
    runs: dict[tuple[str, str], list[Run]] = field(default_factory=lambda: defaultdict(list))
    deployments: dict[tuple[str, str], list[Deployment]] = field(
        default_factory=lambda: defaultdict(list)
    )
    live: dict[str, tuple[datetime, str, str]] = field(default_factory=dict)  # at, key, sha
    repositories: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # (repo, branch) -> [(push_seq, sha)], and sha -> [(repo, branch, first push_seq)]
    branches: dict[tuple[str, str], list[tuple[int, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    pushes: dict[str, dict[tuple[str, str], int]] = field(default_factory=lambda: defaultdict(dict))
    changes_known: bool = False

    @classmethod
    def read(cls, conn, service: str | None = None, sha: str | None = None) -> Index:
        """Read from a warehouse connection: one service (and sha), or all of them (None)."""
        tables = existing_tables(conn)
        index = cls(changes_known="marts.deployment_changes" in tables)
        predictions = (
            "ml.build_predictions"
            if "ml.build_predictions" in tables
            else "(SELECT NULL::VARCHAR AS run_key, NULL::VARCHAR AS model_name,"
            " NULL::DOUBLE AS predicted_success_proba)"
        )
        changes = (
            "(SELECT count(*) FROM marts.deployment_changes c"
            " WHERE c.deployment_key = d.deployment_key)"
            if index.changes_known
            else "NULL::BIGINT"
        )
        params = {"service": service, "sha": sha if service else None}
        rows = {}
        for name, (needs, sql) in QUERIES.items():
            if needs in tables:
                sql = sql.format(predictions=predictions, changes=changes)
                used = {k: v for k, v in params.items() if f"${k}" in sql}
                rows[name] = conn.execute(sql, used).fetchall()
            else:
                rows[name] = []
        for svc, *anomaly in rows["anomalies"]:
            index.anomalies[svc].append(tuple(anomaly))
        for svc, *rollback in rows["rollbacks"]:
            index.rollbacks[svc].append(Rollback(*rollback))
        for scope, *kpi in rows["change_failure_rate"]:
            index.change_failure_rate[scope] = tuple(kpi)
        for svc, run_sha, *run in sorted(
            rows["runs"], key=lambda r: (r[0] or "", r[1] or "", r[2] or "")
        ):
            index.runs[(svc, run_sha)].append(Run(*run))
        for svc, dep_sha, key, production, at, n in rows["deployments"]:
            index.deployments[(svc, dep_sha)].append(Deployment(key, bool(production), at, n))
            if production and at is not None and (svc not in index.live or index.live[svc][0] < at):
                index.live[svc] = (at, key, dep_sha)
        for svc, repo in rows["repositories"]:
            index.repositories[svc].add(repo)
        for repo, branch, commit, seq in rows["commits"]:
            index.branches[(repo, branch)].append((seq, commit))
            first = index.pushes[commit]
            if (repo, branch) not in first or seq < first[(repo, branch)]:
                first[(repo, branch)] = seq
        for listed in index.branches.values():
            listed.sort()
        return index

    def pending_changes(self, service: str, sha: str) -> tuple[int, bool] | None:
        """Commits pushed to the sha's branch after the production sha's push, up to the sha's
        own (CONTRACTS.md §5's push rule): (count, whether a production sha was found there)."""
        repos = self.repositories.get(service, set())
        places = [
            (seq, repo, branch)
            for (repo, branch), seq in self.pushes.get(sha, {}).items()
            if not repos or repo in repos
        ]
        if not places:
            return None
        seq, repo, branch = max(places)
        live = self.live.get(service)
        base = self.pushes.get(live[2], {}).get((repo, branch)) if live else None
        shas = {
            c for s, c in self.branches[(repo, branch)] if (base is None or s > base) and s <= seq
        }
        return len(shas), base is not None

    def knows(self, service: str, sha: str) -> bool:
        """Whether the service ever had the sha: a run or deployment of it, or a push of it to
        one of its repositories (a sha of another service's repository is not enough)."""
        repos = self.repositories.get(service, set())
        return bool(
            self.runs.get((service, sha))
            or self.deployments.get((service, sha))
            or any(repo in repos for repo, _ in self.pushes.get(sha, {}))
        )

    def resolve(self, service: str, sha: str) -> tuple[str, str | None]:
        """The full sha a given one stands for: itself when known, else lower-cased, else (at
        least 7 hex characters) the one commit of the service starting with it. Returns
        (sha, None), or (the sha as given, why it cannot be told) when several commits match."""
        if self.knows(service, sha):
            return sha, None
        lowered = sha.lower()
        if self.knows(service, lowered):
            return lowered, None
        if not (7 <= len(lowered) < 40 and all(c in "0123456789abcdef" for c in lowered)):
            return sha, None
        repos = self.repositories.get(service, set())
        matches = {s for svc, s in self.runs if svc == service and s and s.startswith(lowered)}
        matches |= {
            s for svc, s in self.deployments if svc == service and s and s.startswith(lowered)
        }
        matches |= {
            s
            for s, places in self.pushes.items()
            if s and s.startswith(lowered) and any(repo in repos for repo, _ in places)
        }
        if len(matches) == 1:
            return matches.pop(), None
        if matches:
            listed = ", ".join(sorted(matches)[:5]) + (", ..." if len(matches) > 5 else "")
            return sha, (
                f"{sha} is ambiguous for {service}: {len(matches)} of its commits start with it"
                f" ({listed}); give more of the sha"
            )
        return sha, None

    def facts(
        self, service: str, sha: str, environment: str, now: datetime, gate: Gate, source: str
    ) -> Facts:
        """The facts about promoting service at sha (a full sha, or a short or upper-case one
        standing for exactly one commit of the service); `now` is when the gate is asked (UTC)."""
        sha, ambiguous = self.resolve(service, sha)
        live = self.live.get(service)
        since = now - timedelta(hours=gate.anomaly_window_hours)
        anomalies = sorted(
            (
                Anomaly(key, kind, severity, detected_at, explanation)
                for key, kind, severity, detected_at, explanation, entity in self.anomalies.get(
                    service, []
                )
                if kind in gate.anomaly_kinds
                and (detected_at >= since or (live is not None and entity == live[1]))
            ),
            key=lambda a: a.detected_at,
            reverse=True,
        )
        runs = self.runs.get((service, sha), [])
        deployments = self.deployments.get((service, sha), [])
        changes, basis = None, ""
        pending = None
        if any(d.production for d in deployments):
            if self.changes_known:
                changes = max(d.changes or 0 for d in deployments)
                basis = "in its production deployment's change set"
        else:
            pending = self.pending_changes(service, sha)
            if pending and pending[0]:
                changes = pending[0]
                basis = (
                    "pushed since the sha in production"
                    if pending[1]
                    else "pushed up to this sha (none of this service's is in production yet)"
                )
        if not (self.repositories.get(service) or service in self.live):
            unknown = (
                f"the warehouse knows no service {service!r}: no run or deployment of it"
                " (a service is named as in dcicd.yaml, else by its repository's full name)"
            )
        elif ambiguous:
            unknown = ambiguous
        elif not self.knows(service, sha):
            unknown = (
                f"the warehouse knows nothing of {sha} for {service}: no run, commit or"
                " deployment of it in its repositories (are its events loaded?)"
            )
        else:
            unknown = None
        return Facts(
            service=service,
            sha=sha,
            environment=environment,
            now=now,
            unknown=unknown,
            anomalies=anomalies,
            rollbacks=sorted(self.rollbacks.get(service, []), key=lambda r: r.at, reverse=True),
            change_failure_rate=self.change_failure_rate.get(service),
            runs=runs,
            changes=changes,
            changes_basis=basis,
            source=source,
        )


def read_facts(
    conn, service: str, sha: str, environment: str, now: datetime, gate: Gate, source: str
) -> Facts:
    """The facts about one promotion, read for it alone; a sha not found as given (short,
    upper-case, or unknown) is looked for among all of the service's."""
    index = Index.read(conn, service, sha)
    if not index.knows(service, sha):
        index = Index.read(conn, service)
    return index.facts(service, sha, environment, now, gate, source)
