"""What every fake provider API shares: a real HTTP server on 127.0.0.1, the request log, the
injected faults, the primary rate budget, ETags and conditional requests.

A provider subclass says how it routes a GET (`route`), how it names its rate-limit headers and
how it answers a missing token, an exhausted budget and a secondary limit. Everything a test may
change (faults, budgets, latency) is a plain attribute, read at each request.

Order of the checks for each request, numbered from 1 in order of arrival:
1. latency (`latency_s`, slept outside the lock so concurrent requests overlap);
2. an injected 5xx (`fail_requests` numbers, or every `fail_every`-th): no quota;
3. no credential: 401, no quota;
4. the secondary limit on request number `secondary_limit_at`: 403/429 with `Retry-After`,
   no quota;
5. the primary budget: refilled once its reset epoch has passed; when exhausted, the provider's
   rate-limited answer, no quota (checked before the ETag, so an exhausted budget refuses
   conditional requests too: the cautious reading of the providers' documentation);
6. the answer itself; a 200 GET carries `ETag: W/"<sha256 of the body>"`, and a request whose
   `If-None-Match` names it gets a `304` with no body that costs no quota (GitHub's documented
   behaviour); every other answer (404s included) costs one unit.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit


@dataclass
class RequestRecord:
    """One request as the fake saw it. `headers` keys are lower-cased; `query` keeps every
    value of a repeated parameter (`service_ids[]`); `quota` says whether it used the budget."""

    n: int
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float
    status: int = 0
    quota: bool = False


@dataclass
class Answer:
    """What a route answers: a status, a JSON-able body (or raw `text`), extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    free: bool = False  # costs no quota even when answered (GitHub's GET /rate_limit)


@dataclass
class Query:
    """The query string of a request, in order, with the lookups the routes need."""

    pairs: list[tuple[str, str]]

    def get(self, name: str, default: str | None = None) -> str | None:
        values = [v for k, v in self.pairs if k == name]
        return values[-1] if values else default

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]

    def int(self, name: str, default: int) -> int:
        try:
            return int(self.get(name) or default)
        except ValueError:
            return default

    def with_page(self, page: int, key: str = "page") -> list[tuple[str, str]]:
        """The same parameters with `key` set to page (in place if present, else appended)."""
        pairs = [(k, str(page) if k == key else v) for k, v in self.pairs]
        if not any(k == key for k, _ in pairs):
            pairs.append((key, str(page)))
        return pairs


def weak_etag(body: bytes) -> str:
    return 'W/"' + hashlib.sha256(body).hexdigest() + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110): `W/` is ignored; a list or `*` may be sent."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(part.strip().removeprefix("W/") == bare for part in if_none_match.split(","))


class FakeApi:
    """Base of FakeGitHub, FakeGitLab and FakePagerDuty. Start with `start()` or `with`.

    Attributes a test sets (read at each request):
    - `latency_s`: seconds slept before each answer (for the benchmark, e.g. 0.05);
    - `token`: when set, only this credential is accepted (else any non-empty one);
    - `rate_limit`, `rate_window_s`: the primary budget and how long a window lasts; the window
      starts with the first request and the budget refills when its reset epoch (whole seconds,
      rounded up) has passed; `set_rate_limit()` sets all of it at once;
    - `secondary_limit_at`: the request number (1-based) answered with the secondary limit,
      `secondary_retry_after_s` its `Retry-After`;
    - `fail_requests` (request numbers) and `fail_every` (every n-th) get `fail_status` (502).
    Counters: `log` (RequestRecord list), `requests`, `quota_used`, `not_modified`, `count()`.
    """

    provider = "fake"
    default_rate_limit = 5000
    default_rate_window_s = 3600.0
    secondary_status = 429

    def __init__(self, *, token: str | None = None, latency_s: float = 0.0) -> None:
        self.lock = threading.RLock()
        self.log: list[RequestRecord] = []
        self.token = token
        self.latency_s = latency_s
        self.rate_limit = self.default_rate_limit
        self.rate_window_s = self.default_rate_window_s
        self.rate_remaining: int | None = None
        self.rate_reset: int | None = None
        self.secondary_limit_at: int | None = None
        self.secondary_retry_after_s = 1
        self.fail_requests: set[int] = set()
        self.fail_every: int | None = None
        self.fail_status = 502
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- life cycle -------------------------------------------------------------------------
    def start(self) -> Self:
        """Serve on 127.0.0.1 on a free port; `url` is the base URL (no trailing slash)."""
        if self._httpd is not None:
            return self
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError(f"the fake {self.provider} API is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{self.base_path}"

    @property
    def origin(self) -> str:
        return self.url.removesuffix(self.base_path)

    base_path = ""

    # ---- counters -----------------------------------------------------------------------------
    @property
    def requests(self) -> int:
        return len(self.log)

    @property
    def quota_used(self) -> int:
        return sum(r.quota for r in self.log)

    @property
    def not_modified(self) -> int:
        return sum(r.status == 304 for r in self.log)

    def count(self, *, path_contains: str | None = None, status: int | None = None) -> int:
        """Requests whose path contains a string and/or that got a given status."""
        return sum(
            (path_contains is None or path_contains in r.path)
            and (status is None or r.status == status)
            for r in self.log
        )

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()

    def set_rate_limit(
        self, limit: int, *, reset_in_s: float, remaining: int | None = None
    ) -> None:
        """A budget of `limit` per window of `reset_in_s` seconds, the current window ending
        `reset_in_s` from now (rounded up to a whole epoch second) with `remaining` left."""
        with self.lock:
            self.rate_limit = limit
            self.rate_window_s = reset_in_s
            self.rate_remaining = limit if remaining is None else remaining
            self.rate_reset = math.ceil(time.time() + reset_in_s)

    # ---- what subclasses provide ------------------------------------------------------------
    def route(self, segments: list[str], query: Query, record: RequestRecord) -> Answer:
        raise NotImplementedError

    def authorized(self, headers: dict[str, str]) -> bool:
        credential = headers.get("authorization", "").strip()
        if not credential:
            return False
        return self.token is None or credential.split()[-1].removeprefix("token=") == self.token

    def unauthorized(self) -> Answer:
        return Answer(401, {"message": "Unauthorized"})

    def rate_headers(self) -> dict[str, str]:
        return {}

    def rate_limited(self) -> Answer:
        return Answer(429, {"message": "rate limit exceeded"})

    def secondary_limited(self) -> Answer:
        return Answer(
            self.secondary_status,
            {"message": "secondary rate limit"},
            {"Retry-After": str(self.secondary_retry_after_s)},
        )

    def not_found(self) -> Answer:
        return Answer(404, {"message": "Not Found"})

    # ---- request handling -------------------------------------------------------------------
    def _refill(self, now: float) -> None:
        if self.rate_reset is None or now >= self.rate_reset:
            self.rate_remaining = self.rate_limit
            self.rate_reset = math.ceil(now + self.rate_window_s)

    def handle(self, method: str, target: str, headers: dict[str, str]) -> tuple[Answer, bytes]:
        """The answer to one request and its encoded body (also recorded in `log`)."""
        split = urlsplit(target)
        query = Query(parse_qsl(split.query, keep_blank_values=True))
        grouped: dict[str, list[str]] = {}
        for key, value in query.pairs:
            grouped.setdefault(key, []).append(value)
        with self.lock:
            record = RequestRecord(
                len(self.log) + 1, method, split.path, grouped, headers, time.monotonic()
            )
            self.log.append(record)
        if self.latency_s:
            time.sleep(self.latency_s)
        with self.lock:
            answer, body = self._answer(method, split.path, query, headers, record)
            record.status = answer.status
        return answer, body

    def _answer(
        self, method: str, path: str, query: Query, headers: dict[str, str], record: RequestRecord
    ) -> tuple[Answer, bytes]:
        n = record.n
        if n in self.fail_requests or (self.fail_every and n % self.fail_every == 0):
            page = f"<html><body><h1>{self.fail_status} Bad Gateway</h1></body></html>"
            return Answer(self.fail_status, text=page), page.encode()
        now = time.time()
        self._refill(now)
        if not self.authorized(headers):
            return self._finish(self.unauthorized(), quota=False)
        if n == self.secondary_limit_at:
            return self._finish(self.secondary_limited(), quota=False)
        if (self.rate_remaining or 0) <= 0:
            return self._finish(self.rate_limited(), quota=False)
        if method != "GET" or not path.startswith(self.base_path + "/"):
            return self._finish(self.not_found(), quota=True, record=record)
        segments = [unquote(s) for s in path[len(self.base_path) + 1 :].split("/")]
        if segments and segments[-1] == "":
            segments.pop()
        answer = self.route(segments, query, record)
        if answer.status == 200 and answer.body is not None:
            body = json.dumps(answer.body, separators=(",", ":")).encode()
            etag = weak_etag(body)
            answer.headers["ETag"] = etag
            if etag_matches(headers.get("if-none-match"), etag):
                return self._finish(Answer(304, headers={"ETag": etag}), quota=False)
            answer.text = None
            return self._finish(answer, quota=not answer.free, record=record, body=body)
        return self._finish(answer, quota=not answer.free, record=record)

    def _finish(
        self,
        answer: Answer,
        *,
        quota: bool,
        record: RequestRecord | None = None,
        body: bytes | None = None,
    ) -> tuple[Answer, bytes]:
        if quota and record is not None:
            record.quota = True
            self.rate_remaining = (self.rate_remaining or 0) - 1
        answer.headers = {**self.rate_headers(), **answer.headers}
        if answer.status == 304:
            return answer, b""
        if body is not None:
            return answer, body
        if answer.text is not None:
            return answer, answer.text.encode()
        return answer, json.dumps(answer.body, separators=(",", ":")).encode()


def _handler_for(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer, body = api.handle(self.command, self.path, headers)
            try:
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.status != 304:
                    kind = "application/json"
                    if answer.text is not None:
                        kind = "text/html" if answer.text.startswith("<") else "text/plain"
                    self.send_header("Content-Type", f"{kind}; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if answer.status != 304 and self.command != "HEAD":
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    return Handler


# ---- pagination shared by GitHub and GitLab ---------------------------------------------------
@dataclass
class Page:
    """One page of a list: its items, the page number and size, the last page (>= 1)."""

    items: list
    page: int
    per_page: int
    last: int


def page_of(
    items: list, query: Query, *, default_per_page: int, max_per_page: int, cap: int | None = None
) -> Page:
    """Slice `items` as `page`/`per_page` ask (per_page clamped to 1..max). With `cap`, items past
    the first `cap` are never returned (the pages past it are empty) and `last` stops there."""
    per_page = min(max(query.int("per_page", default_per_page), 1), max_per_page)
    page = max(query.int("page", 1), 1)
    reachable = len(items) if cap is None else min(len(items), cap)
    start = (page - 1) * per_page
    chunk = items[start : min(start + per_page, reachable)] if start < reachable else []
    return Page(chunk, page, per_page, max(1, math.ceil(reachable / per_page)))


def link_header(base: str, query: Query, page: Page, rels: Iterable[str]) -> str | None:
    """An RFC 8288 `Link` value with the rels asked for that apply to this page (prev and first
    past page 1, next and last before the last page), every other parameter kept."""
    targets = {
        "prev": page.page - 1 if page.page > 1 else None,
        "next": page.page + 1 if page.page < page.last else None,
        "last": page.last if page.page < page.last else None,
        "first": 1 if page.page > 1 else None,
    }
    parts = [
        f'<{base}?{urlencode(query.with_page(targets[rel]))}>; rel="{rel}"'
        for rel in rels
        if targets.get(rel) is not None
    ]
    return ", ".join(parts) or None
