"""What a request passes before the app sees it: the API key (header, or the session cookie the
page gets by signing in) and a bound on the body, counted while it is read whatever its framing
(a chunked body has no Content-Length to check up front).

Plain ASGI rather than ``@app.middleware("http")``: that wrapper costs a few ms per request, a
large share of a top-K answer.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Mapping

from fastapi import HTTPException
from fastapi.responses import JSONResponse

API_KEY_HEADER = "X-API-Key"
SESSION_COOKIE = "crossrec_session"
#: what answers without the key: the page shell (it asks for the key), health, and signing in
PUBLIC_PATHS = frozenset({"/", "/api/health", "/api/session"})


class BodyTooLarge(HTTPException):
    """The body grew past the limit while it was read (HTTP 413)."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body over {limit} bytes")
        self.limit = limit


def session_token(api_key: str) -> str:
    """The session cookie's value: derived from the key, so the key itself never sits in a
    browser and changing the key ends every session."""
    return hmac.new(api_key.encode(), b"crossrec session cookie", hashlib.sha256).hexdigest()


def same_secret(given: str | bytes, expected: str) -> bool:
    """Constant-time comparison (no timing hint of how much of a guess was right)."""
    given_bytes = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(given_bytes, expected.encode())


def cookie(header: bytes, name: str) -> bytes:
    """One cookie's value from a Cookie header (b"" when absent)."""
    for part in header.split(b";"):
        key, sep, value = part.strip().partition(b"=")
        if sep and key == name.encode():
            return value
    return b""


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the API on this machine (an address, not a prefix:
    "127.0.0.1.example.com" is a name anyone may resolve)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def api_key_from_env(host: str, variable: str = "CROSSREC_API_KEY") -> str | None:
    """The API key; required (RuntimeError) when binding to anything but loopback."""
    key = os.environ.get(variable) or None
    if not is_loopback(host) and not key:
        raise RuntimeError(
            f"--host {host} exposes the API beyond this machine: set {variable} to an API key "
            f"(clients send it as the {API_KEY_HEADER} header)"
        )
    return key


class Guard:
    """API key (when set) on every path but ``PUBLIC_PATHS``; body size bounded per path
    (``max_body`` unless ``body_limits`` names the path)."""

    def __init__(
        self,
        app,
        api_key: str | None,
        max_body: int,
        body_limits: Mapping[str, int] = {},  # noqa: B006
    ):
        self.app, self.api_key, self.max_body = app, api_key, max_body
        self.body_limits = dict(body_limits)
        self.token = session_token(api_key) if api_key else ""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.body_limits.get(path, self.max_body)
        problem = self._problem(scope, path, limit)
        if problem is not None:
            await JSONResponse({"detail": problem[1]}, problem[0])(scope, receive, send)
            return
        await self._bounded(scope, receive, send, limit)

    def _problem(self, scope, path: str, limit: int) -> tuple[int, str] | None:
        headers = dict(scope.get("headers") or [])
        if self.api_key and path not in PUBLIC_PATHS and not self._signed_in(headers):
            return 401, (
                f"missing or wrong {API_KEY_HEADER} header (in a browser: sign in on the page /)"
            )
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return 413, f"request body over {limit} bytes"
        return None

    def _signed_in(self, headers: dict) -> bool:
        given = headers.get(API_KEY_HEADER.lower().encode())
        if given is not None:
            return same_secret(given, self.api_key)
        return same_secret(cookie(headers.get(b"cookie", b""), SESSION_COOKIE), self.token)

    async def _bounded(self, scope, receive, send, limit: int) -> None:
        """Run the app with a ``receive`` that counts body bytes and raises BodyTooLarge (the
        app answers 413) as soon as they pass ``limit``."""
        seen, started = 0, False

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge as err:  # not answered inside the app (e.g. read by a middleware)
            if started:
                raise
            await JSONResponse({"detail": err.detail, "field": "body"}, 413)(scope, receive, send)
