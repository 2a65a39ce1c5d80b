"""Authenticity of a delivery, as each provider defines it; every comparison is constant-time.

- GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`
  (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries).
- GitLab: `X-Gitlab-Token` carries the secret token itself
  (https://docs.gitlab.com/user/project/integrations/webhooks/#custom-headers).
- PagerDuty: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 of the raw body;
  several signatures are sent while a secret rotates, and one match is enough
  (https://developer.pagerduty.com/docs/webhooks/webhook-signatures/).
- Health samples: `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hashlib
import hmac


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_valid(body: bytes, header: str | None, secret: str) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(
        header.removeprefix("sha256=").strip().lower(), _hmac_hex(secret, body)
    )


def gitlab_valid(header: str | None, token: str) -> bool:
    return header is not None and hmac.compare_digest(header.encode(), token.encode())


def pagerduty_valid(body: bytes, header: str | None, secret: str) -> bool:
    if not header:
        return False
    expected = _hmac_hex(secret, body)
    signatures = [s.strip() for s in header.split(",")]
    # Compare against every v1 signature (no early exit), so timing says nothing of which matched.
    matches = [
        hmac.compare_digest(s.removeprefix("v1=").lower(), expected)
        for s in signatures
        if s.startswith("v1=")
    ]
    return any(matches)


def bearer_valid(header: str | None, token: str) -> bool:
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), token.encode())
