"""One import, start to end: the provider's listings into landing files, then into raw.events
by the same loader as `dcicd ingest`. Used by `dcicd import` and by the import assets."""

from __future__ import annotations

import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dcicd_platform.home import Home
from dcicd_platform.sources.http import ClientStats, Progress

DEFAULT_SINCE = "90d"


@dataclass(frozen=True)
class Provider:
    """What an import needs to know of a provider: its token, API, headers and importer."""

    name: str
    token_variable: str
    default_api_url: str
    headers: Callable[[str], dict[str, str]]
    import_scope: Callable[..., Counter]


def providers() -> dict[str, Provider]:
    from dcicd_platform.sources import github, gitlab, pagerduty

    return {
        "github": Provider(
            "github",
            "DCICD_GITHUB_TOKEN",
            "https://api.github.com",
            github.token_headers,
            github.import_repository,
        ),
        "gitlab": Provider(
            "gitlab",
            "DCICD_GITLAB_TOKEN",
            "https://gitlab.com/api/v4",
            gitlab.token_headers,
            gitlab.import_project,
        ),
        "pagerduty": Provider(
            "pagerduty",
            "DCICD_PAGERDUTY_API_TOKEN",
            "https://api.pagerduty.com",
            pagerduty.token_headers,
            pagerduty.import_service,
        ),
    }


def api_base(source: str, api_url: str | None) -> str:
    """The API's base URL: the provider's default, or the one given; a self-managed GitLab may
    be named by its host alone (`https://gitlab.example.com` means its `/api/v4`)."""
    if not api_url:
        return providers()[source].default_api_url
    api_url = api_url.rstrip("/")
    if source == "gitlab" and not api_url.endswith("/api/v4"):
        return api_url + "/api/v4"
    return api_url


@dataclass
class ImportSummary:
    """What one import did: objects found by kind, requests, waits, and what the loader did."""

    source: str
    scopes: list[str]
    counts: Counter = field(default_factory=Counter)
    stats: ClientStats = field(default_factory=ClientStats)
    envelopes: int = 0
    files: list[Path] = field(default_factory=list)
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    elapsed_s: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (scope, why)

    def lines(self) -> list[str]:
        found = ", ".join(f"{n:,} {kind}" for kind, n in sorted(self.counts.items()) if n)
        s = self.stats
        return [
            f"{self.source}: {', '.join(self.scopes)}: {found or 'nothing new'}",
            f"{s.requests:,} requests ({s.not_modified:,} not modified, {s.retries} retried),"
            f" {s.rate_limit_waits} rate-limit waits ({s.waited_s:.0f} s)",
            f"{self.envelopes:,} envelopes in {len(self.files)} files: {self.loaded:,} loaded,"
            f" {self.duplicates:,} duplicates, {self.quarantined:,} quarantined"
            f" in {self.elapsed_s:.1f} s",
            *(f"failed: {scope}: {why}" for scope, why in self.failures),
        ]


class TerminalProgress(Progress):
    """A line on stderr every few seconds, and one for every wait (progress on long work)."""

    def __init__(self, label: Callable[[], str], every_s: float = 2.0, out=sys.stderr) -> None:
        self._label = label
        self._every_s = every_s
        self._out = out
        self._last = time.monotonic()  # the first line after every_s: a quick import prints none

    def requested(self, stats: ClientStats) -> None:
        now = time.monotonic()
        if now - self._last >= self._every_s:
            self._last = now
            print(
                f"{self._label()}, {stats.requests:,} requests"
                f" ({stats.not_modified:,} not modified)",
                file=self._out,
                flush=True,
            )

    def waiting(self, seconds: float, reason: str) -> None:
        until = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%H:%M:%S UTC")
        print(f"waiting {seconds:.1f} s ({reason}), until {until}", file=self._out, flush=True)


def parse_since(text: str, now: datetime) -> datetime:
    """`90d` (days back from now), `2026-03-01` or an RFC 3339 time; raises ValueError, also
    for a moment after now (an import from the future would ask for nothing and say nothing)."""
    text = text.strip()
    if match := re.fullmatch(r"(\d+)d", text):
        return now - timedelta(days=int(match.group(1)))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give a number of days (90d) or a date (2026-03-01)"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment > now:
        raise ValueError(
            f"--since {text!r} is after now ({now:%Y-%m-%d %H:%M} UTC): give a past date"
        )
    return moment


def explain(exc, provider: Provider) -> str:
    """An API refusal in a user's terms: what to check, by status."""
    hints = {
        401: f"the token in {provider.token_variable} was refused",
        403: f"the token in {provider.token_variable} may not read this",
        404: f"not found: check the name, and that the token in {provider.token_variable}"
        " can see it (providers answer 404 for what a token may not read)",
    }
    hint = hints.get(exc.status)
    return f"{hint} ({exc})" if hint else str(exc)


def token_for(provider: Provider, environ=os.environ) -> str:
    """The provider's token from its environment variable; ValueError naming it when unset."""
    token = environ.get(provider.token_variable, "").strip()
    if not token:
        raise ValueError(
            f"set {provider.token_variable} to a {provider.name} token (see the README's"
            " 'Import your history' for the scopes it needs)"
        )
    return token


def run_import(
    home: Home,
    source: str,
    scopes: list[str],
    *,
    since: datetime,
    token: str,
    api_url: str | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
    flush_every_s: float = 5.0,
    commit_files: Collection[str] = (),
) -> ImportSummary:
    """Import each scope (repository, project or service), then load what landed.

    `commit_files`: the GitHub repositories whose commits are asked for their files too (one
    request a commit: those whose services name paths, `PlatformConfig.path_repositories`).

    Files land under landing/import/<source>/; the state is flushed at most every
    flush_every_s seconds and at the end of each scope. Raises ValueError for an unknown
    source, ApiError when the provider refuses (bad token, no access).
    """
    from dcicd_platform.ingest.landing import landing_name
    from dcicd_platform.ingest.loader import discover, load_files
    from dcicd_platform.resources import warehouse_resource
    from dcicd_platform.sources.envelopes import EnvelopeWriter
    from dcicd_platform.sources.http import ApiClient, ApiError
    from dcicd_platform.sources.state import ImportState

    known = providers()
    if source not in known:
        raise ValueError(f"unknown source {source!r}: one of {', '.join(sorted(known))}")
    provider = known[source]
    home.prepare()
    started = time.monotonic()
    now = now or datetime.now(UTC)
    summary = ImportSummary(source, list(scopes))
    warehouse = warehouse_resource(home.warehouse)
    writers: list = []

    def landed() -> str:
        return f"{source}: {sum(w.envelopes for w in writers):,} objects landed"

    client = ApiClient(
        api_base(source, api_url),
        provider.headers(token),
        progress=progress or TerminalProgress(landed),
    )
    with client:
        for scope in scopes:
            state = ImportState(warehouse.get_connection, source, scope)
            writer = EnvelopeWriter(home.landing, source, scope)
            writers.append(writer)
            last_flush = [time.monotonic()]

            def checkpoint(state=state, last_flush=last_flush) -> None:
                if time.monotonic() - last_flush[0] >= flush_every_s:
                    state.flush()
                    last_flush[0] = time.monotonic()

            try:
                wants_files = source == "github" and scope in commit_files
                options = {"commit_files": True} if wants_files else {}
                provider.import_scope(
                    client,
                    scope,
                    since,
                    now,
                    writer,
                    state,
                    checkpoint,
                    counts=summary.counts,
                    **options,
                )
            except ApiError as exc:
                # One repository the token cannot read stops only itself: what it landed and
                # what the others bring still load, and the summary names it.
                summary.failures.append((scope, explain(exc, provider)))
            finally:
                state.flush()  # only what landed whole is recorded: a rerun resumes from it
                summary.files += writer.files
                summary.envelopes += writer.envelopes
    summary.stats = client.stats
    folder = home.landing / "import" / source
    with warehouse.get_connection() as conn:
        reports = load_files(
            conn, discover([folder]) if folder.exists() else [],
            name_of=lambda p: landing_name(p, home.landing),
        )  # fmt: skip
    for report in reports:
        summary.loaded += report.loaded
        summary.duplicates += report.duplicates
        summary.quarantined += report.quarantined
    summary.elapsed_s = time.monotonic() - started
    return summary


def organisation_scopes(source: str, org: str, token: str, api_url: str | None) -> list[str]:
    """The repositories of an organisation (GitHub) to import; ValueError for other sources."""
    from dcicd_platform.sources import github
    from dcicd_platform.sources.http import ApiClient

    if source != "github":
        raise ValueError(f"--org is for GitHub organisations, not {source}")
    provider = providers()[source]
    with ApiClient(api_base(source, api_url), provider.headers(token)) as client:
        return github.organisation_repositories(client, org)
