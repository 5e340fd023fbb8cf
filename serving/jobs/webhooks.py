"""Job callbacks: POST the final job JSON to the ``callback_url`` given at submission, signed.

Signature (documented in the README's API section): with ``ts`` the Unix time in seconds sent as
``X-Trueframe-Timestamp`` and ``body`` the exact request bytes,
``X-Trueframe-Signature: sha256=<hex HMAC-SHA256(secret, ts + "." + body)>``. The secret is the
calling key's webhook secret (printed once by ``trueframe keys create``) or, for jobs made without
a key, ``TRUEFRAME_SERVE__WEBHOOK_SECRET``. Receivers should reject timestamps older than a few
minutes. Any 2xx ends delivery; other answers and network errors are retried with exponential
backoff up to ``webhook_max_attempts``. Only http/https URLs; loopback, private and link-local
addresses are refused unless ``callback_allow_private`` is set (tests, closed networks).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import httpx

from detector.errors import InvalidRequest
from detector.settings import ServeSettings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Trueframe-Signature"
TIMESTAMP_HEADER = "X-Trueframe-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Trueframe-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def check_callback_url(url: str, allow_private: bool, option: str = "callback_url") -> str:
    """The URL when it is an acceptable callback target, else :class:`InvalidRequest` naming
    ``option`` (the query parameter, or the CLI's ``--webhook-url``)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidRequest(f"{option} must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise InvalidRequest(f"{option} must not carry credentials")
    if not allow_private:
        _refuse_private(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), option)
    return url


def _refuse_private(host: str, port: int, option: str) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidRequest(f"{option} host {host!r} does not resolve") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise InvalidRequest(
                f"{option} resolves to a non-public address ({address}); "
                "set TRUEFRAME_SERVE__CALLBACK_ALLOW_PRIVATE=true to allow it"
            )


async def deliver(
    url: str,
    body: bytes,
    secret: str,
    settings: ServeSettings,
    job_id: str,
    event: str | None = None,
    *,
    made: int = 0,
    count: Callable[[int], Awaitable[None]] | None = None,
) -> bool:
    """POST ``body`` until a 2xx answer or ``webhook_max_attempts`` in all; True when delivered.

    ``event`` (a review or appeal event) is sent as ``X-Trueframe-Event``; job callbacks have none.
    ``made`` attempts were made before (by a service that stopped): the count goes on from there,
    the first of the rest at once. ``count(n)`` is awaited before attempt ``n`` is sent, so the
    store holds the count even when the service stops mid-request.
    """
    delay = settings.webhook_backoff_s * 2**made  # the wait after attempt made + 1, as if never stopped
    async with httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False) as client:
        for attempt in range(made + 1, settings.webhook_max_attempts + 1):
            if count is not None:
                await count(attempt)
            try:
                if not settings.callback_allow_private:  # resolve again: DNS may have changed
                    check_callback_url(url, allow_private=False)
                timestamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/json",
                    TIMESTAMP_HEADER: timestamp,
                    SIGNATURE_HEADER: sign(secret, timestamp, body),
                    "X-Trueframe-Job": job_id,
                    "X-Trueframe-Attempt": str(attempt),
                }
                if event is not None:
                    headers["X-Trueframe-Event"] = event
                response = await client.post(url, content=body, headers=headers)
                if response.is_success:
                    return True
                outcome = f"HTTP {response.status_code}"
            except (httpx.HTTPError, InvalidRequest) as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            log.warning("webhook for %s attempt %d failed: %s", job_id, attempt, outcome)
            if attempt < settings.webhook_max_attempts:
                await asyncio.sleep(delay)
                delay *= 2
    return False
