"""One client for the providers' REST APIs: httpx does the HTTP, tenacity the retries.

What the providers document, and what this client does about it:
- GitHub's primary rate limit (`X-RateLimit-Remaining` / `X-RateLimit-Reset`, epoch seconds;
  403 or 429 once spent), GitLab's (`RateLimit-Remaining` / `RateLimit-Reset`) and PagerDuty's
  (429, `ratelimit-reset` in seconds): wait until the reset, never fail, never longer;
- secondary limits (403/429 with `Retry-After` seconds; GitHub: "wait at least one minute"
  when it gives none): wait as told;
- 5xx answers, timeouts and dropped connections: retried with exponential backoff;
- conditional requests: `If-None-Match` with the ETag of the last answer; GitHub documents that
  a `304 Not Modified` does not count against the rate limit.
(GitHub Docs, "Rate limits for the REST API" and "Best practices for using the REST API";
GitLab Docs, "Rate limits"; PagerDuty Developer Docs, "Rate Limiting".)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_ATTEMPTS = 6  # a failing request: 5 retries, 1 + 2 + 4 + 8 + 16 s apart
MAX_LIMIT_WAITS = 50  # a limit that never lifts is an error after this many waits
SECONDARY_DEFAULT_WAIT_S = 60.0


class ApiError(RuntimeError):
    """An answer the import cannot go on from (bad token, no access, not found, ...)."""

    def __init__(self, status: int, url: str, message: str) -> None:
        super().__init__(f"{status} from {url}: {message}" if status else f"{url}: {message}")
        self.status = status
        self.url = url


class _Retry(Exception):
    """An answer worth asking again: `wait_s` when the provider said how long, else backoff."""

    def __init__(
        self,
        reason: str,
        wait_s: float | None = None,
        rate_limit: bool = False,
        reset_at: float | None = None,
    ):
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s
        self.rate_limit = rate_limit
        self.reset_at = reset_at  # epoch seconds the provider named, if it named one


@dataclass
class ApiPage:
    """One answer: `status` 200 (data parsed) or 304 (unchanged since `etag`: data None)."""

    status: int
    data: Any
    etag: str | None
    next_url: str | None
    headers: dict[str, str]
    url: str


@dataclass
class ClientStats:
    """What the client did: requests sent, 304s among them, retries, rate-limit waits."""

    requests: int = 0
    not_modified: int = 0
    retries: int = 0
    rate_limit_waits: int = 0
    waited_s: float = 0.0
    # Each rate-limit wait: (began, seconds, the reset it waited for), epoch seconds.
    waits: list[tuple[float, float, float | None]] = field(default_factory=list)


class Progress:
    """What the client reports while it works; the command line prints it, assets log it."""

    def requested(self, stats: ClientStats) -> None:
        """After each request."""

    def waiting(self, seconds: float, reason: str) -> None:
        """Before a wait for a rate limit or a retry."""


def _header(headers, *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value is not None:
            return value
    return None


class ApiClient:
    """GET requests to one provider's API (base_url, e.g. https://api.github.com).

    `headers` carry the token (`Authorization: Bearer ...`, GitLab's `PRIVATE-TOKEN`, ...).
    `sleep` and `now` are the clock the waits use (epoch seconds).
    """

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        *,
        progress: Progress | None = None,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"User-Agent": "dcicd-import", **headers},
            timeout=timeout_s,
            follow_redirects=True,
        )
        self.progress = progress or Progress()
        self.stats = ClientStats()
        self._sleep = sleep
        self._now = now
        self._blocked_until = 0.0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, url: str, params: dict | None = None, etag: str | None = None) -> ApiPage:
        """One GET (a path under base_url, or an absolute URL from a `Link` header).

        Waits out rate limits and retries 5xx/timeouts; raises ApiError for an answer that no
        retry mends (401, 403 without a rate limit, 404, 422, ...) or after MAX_ATTEMPTS.
        """
        import tenacity

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retry),
            stop=self._stop,
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._get_once, url, params, etag)
        except _Retry as exc:
            raise ApiError(
                0,
                f"{self.base_url}{url}" if url.startswith("/") else url,
                f"gave up after {MAX_ATTEMPTS} attempts: {exc.reason}",
            ) from exc

    def pages(
        self, url: str, params: dict | None = None, etag: str | None = None
    ) -> Iterator[ApiPage]:
        """Every page of a listing, following `Link: rel="next"` (GitHub, GitLab).

        With `etag`, the first page is asked conditionally: a 304 is the only page yielded
        (nothing changed, and it cost no quota).
        """
        page = self.get(url, params, etag=etag)
        yield page
        while page.status != 304 and page.next_url:
            page = self.get(page.next_url)
            yield page

    # -- one request -------------------------------------------------------------------------

    def _get_once(self, url: str, params: dict | None, etag: str | None) -> ApiPage:
        import httpx

        self._wait_for_reset()
        headers = {"If-None-Match": etag} if etag else {}
        self.stats.requests += 1
        try:
            response = self._http.get(url, params=params, headers=headers)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ApiError(0, f"{self.base_url}{url}", f"not a usable address: {exc}") from exc
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise _Retry(f"could not reach {self.base_url}: {type(exc).__name__}: {exc}") from exc
        finally:
            self.progress.requested(self.stats)
        self._note_budget(response.headers)
        status = response.status_code
        where = str(response.url)
        if status == 304:
            self.stats.not_modified += 1
            return ApiPage(304, None, etag, None, dict(response.headers), where)
        if status < 300:
            next_url = response.links.get("next", {}).get("url")
            return ApiPage(
                status, response.json(), response.headers.get("ETag"), next_url,
                dict(response.headers), where,
            )  # fmt: skip
        if status in (403, 429):
            self._raise_if_limited(response)
        if status >= 500 or status == 408:
            raise _Retry(f"{status} from {where}")
        raise ApiError(status, where, _message(response))

    def _note_budget(self, headers) -> None:
        """A spent budget blocks the next request until its reset, instead of a refused one."""
        remaining = _header(headers, "X-RateLimit-Remaining", "RateLimit-Remaining")
        reset = self._reset_at(headers)
        if remaining is not None and reset is not None and int(float(remaining)) <= 0:
            self._blocked_until = max(self._blocked_until, reset)

    def _reset_at(self, headers) -> float | None:
        """When the rate budget refills, as epoch seconds (PagerDuty says it in seconds)."""
        epoch = _header(headers, "X-RateLimit-Reset", "RateLimit-Reset")
        if epoch is not None:
            return float(epoch)
        seconds = _header(headers, "ratelimit-reset")
        return self._now() + float(seconds) if seconds is not None else None

    def _raise_if_limited(self, response) -> None:
        headers = response.headers
        retry_after = _header(headers, "Retry-After")
        if retry_after is not None:
            wait = float(retry_after)
            raise _Retry("secondary rate limit", wait, rate_limit=True, reset_at=self._now() + wait)
        remaining = _header(headers, "X-RateLimit-Remaining", "RateLimit-Remaining")
        reset = self._reset_at(headers)
        if reset is not None and (remaining is None or int(float(remaining)) <= 0):
            raise _Retry(
                "rate limit", max(0.0, reset - self._now()), rate_limit=True, reset_at=reset
            )
        message = _message(response)
        if "rate limit" in message.lower() or response.status_code == 429:
            raise _Retry("secondary rate limit", SECONDARY_DEFAULT_WAIT_S, rate_limit=True)
        raise ApiError(
            response.status_code,
            str(response.url),
            f"{message} (does the token have the scopes the README names?)",
        )

    def _wait_for_reset(self) -> None:
        wait = self._blocked_until - self._now()
        if wait > 0:
            self._record_wait(wait, "rate limit", self._blocked_until)
            self._sleep(wait)
        self._blocked_until = 0.0

    # -- tenacity's hooks --------------------------------------------------------------------

    def _stop(self, retry_state) -> bool:
        """Rate limits are waited out (up to MAX_LIMIT_WAITS in a row); failures retried
        MAX_ATTEMPTS times."""
        exc = retry_state.outcome.exception()
        if isinstance(exc, _Retry) and exc.rate_limit:
            return retry_state.attempt_number >= MAX_LIMIT_WAITS
        return retry_state.attempt_number >= MAX_ATTEMPTS

    def _wait(self, retry_state) -> float:
        exc = retry_state.outcome.exception()
        if isinstance(exc, _Retry) and exc.wait_s is not None:
            return exc.wait_s
        return min(16.0, 2.0 ** (retry_state.attempt_number - 1))

    def _before_sleep(self, retry_state) -> None:
        exc = retry_state.outcome.exception()
        seconds = retry_state.next_action.sleep
        if isinstance(exc, _Retry) and exc.rate_limit:
            self._record_wait(seconds, exc.reason, exc.reset_at)
        else:
            self.stats.retries += 1
            self.progress.waiting(seconds, f"retrying after {exc}")

    def _record_wait(self, seconds: float, reason: str, reset_at: float | None) -> None:
        self.stats.rate_limit_waits += 1
        self.stats.waited_s += seconds
        self.stats.waits.append((self._now(), seconds, reset_at))
        self.progress.waiting(seconds, reason)


def _message(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:300]
    return str(body)[:300]


def pages_needed(total: int, per_page: int = 100) -> int:
    """How many pages a listing of `total` objects takes."""
    return max(1, math.ceil(total / per_page))
