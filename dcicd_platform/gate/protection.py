"""GitHub's custom deployment protection rules, answered by the gate.

GitHub sends `deployment_protection_rule` (action `requested`) when a workflow job targets an
environment whose protection rules name the dcicd GitHub App; the payload names the
repository, the environment, the deployment's sha and a `deployment_callback_url`. The answer
is a POST to that URL: `{"environment_name", "state": "approved"|"rejected", "comment"}`
(GitHub Docs, "Creating custom deployment protection rules" and the REST API's "Review custom
deployment protection rules for a workflow run"). The token (DCICD_GITHUB_TOKEN, an
installation token of that App) goes only to a callback under `gate.github_api_url`.

Approved on go (and so always in shadow and off modes), rejected on no-go and when the gate
cannot decide in enforce mode; the comment carries every reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dcicd_platform.config import PlatformConfig
from dcicd_platform.gate.ask import MARK, ask
from dcicd_platform.gate.rules import Verdict

COMMENT_LIMIT = 4000  # keep the review comment readable in the deployment's review log


@dataclass(frozen=True)
class Review:
    """What was answered: the verdict, the state sent, the callback's HTTP status (None: no
    answer, or not sent) and why it was not sent."""

    verdict: Verdict | None
    state: str | None
    status: int | None
    detail: str


def comment(verdict: Verdict) -> str:
    """The review comment: the verdict and every reason, one a line."""
    head = f"dcicd gate: {verdict.verdict} for {verdict.service} @ {verdict.sha[:12]}"
    if verdict.mode != "enforce":
        head += f" (mode {verdict.mode}; enforce would say {verdict.enforced})"
    lines = [head]
    if verdict.why_undecided:
        lines.append(f"cannot decide: {verdict.why_undecided}")
    lines += [f"{MARK[r.status].strip()} {r.rule}: {r.detail}" for r in verdict.reasons]
    text = "\n".join(lines)
    return text if len(text) <= COMMENT_LIMIT else text[: COMMENT_LIMIT - 1] + "…"


def review_body(verdict: Verdict) -> dict:
    return {
        "environment_name": verdict.environment,
        "state": "approved" if verdict.verdict == "go" else "rejected",
        "comment": comment(verdict),
    }


def _post(url: str, body: dict, token: str, attempts: int = 4) -> tuple[int | None, str]:
    """POST the review; 5xx, 429 and transport errors are retried with backoff."""
    import httpx
    import tenacity

    class _Again(Exception):
        pass

    def once() -> tuple[int, str]:
        try:
            response = httpx.post(
                url,
                json=body,
                timeout=10.0,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": "2022-11-28",
                    "User-Agent": "dcicd-gate",
                },
            )
        except httpx.TransportError as exc:
            raise _Again(str(exc)) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise _Again(f"{response.status_code} from {url}")
        return response.status_code, response.text[:300]

    try:
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Again),
            stop=tenacity.stop_after_attempt(attempts),
            wait=tenacity.wait_exponential(multiplier=0.5, max=8),
            reraise=True,
        )(once)
    except _Again as exc:
        return None, f"gave up after {attempts} attempts: {exc}"


def answer(
    home_root: Path,
    payload: dict,
    token: str | None,
    config: PlatformConfig,
    facts_from: Callable | None = None,
) -> Review:
    """Decide on a `deployment_protection_rule` delivery and answer it through the REST API."""
    if payload.get("action") != "requested":
        return Review(None, None, None, f"action {payload.get('action')!r}: nothing to answer")
    url = payload.get("deployment_callback_url") or ""
    repo = (payload.get("repository") or {}).get("full_name") or ""
    sha = (payload.get("deployment") or {}).get("sha") or ""
    environment = payload.get("environment") or (payload.get("deployment") or {}).get(
        "environment", ""
    )
    if not (url and repo and sha and environment):
        return Review(
            None, None, None, "the payload lacks a callback URL, repository, sha or environment"
        )
    verdict = ask(
        home_root,
        repo,
        sha,
        environment,
        asked_by="github:deployment_protection_rule",
        config=config,
        facts_from=facts_from,
    )
    body = review_body(verdict)
    allowed = config.gate.github_api_url.rstrip("/") + "/"
    if not url.startswith(allowed):
        return Review(
            verdict, body["state"], None, f"callback {url} is not under {allowed}: not sent"
        )
    if not token:
        return Review(verdict, body["state"], None, "DCICD_GITHUB_TOKEN is not set: not sent")
    status, detail = _post(url, body, token)
    return Review(verdict, body["state"], status, detail)
