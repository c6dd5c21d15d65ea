"""Request limits, enforced as ASGI middleware before any routing or parsing.

- BodyLimit: a body over `max_body_bytes` gets 413 unread: a declared Content-Length is checked
  before a byte is read; a chunked body is counted while it streams in and refused at the first
  byte over the limit (it is buffered up to the limit, then replayed to the app).
- RateLimit: a token bucket per API key (the presented key, hashed: a wrong key cannot drain a
  real key's bucket), answering 429 with Retry-After. Behind the SSO proxy (when enabled), a
  request without a key is counted against its user header instead. Other requests without a
  key are not limited here: authentication refuses them, or they are health and metrics.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from search_api.bearer import bearer_token
from search_api.errors import error_response

MAX_BUCKETS = 10_000  # distinct keys remembered; the least recently seen is forgotten first


class TokenBuckets:
    """`rate_per_minute` tokens a minute per key, at most `burst` saved up."""

    def __init__(self, rate_per_minute: int, burst: int) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one token; 0.0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, seen = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - seen) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
            return wait


def _caller(scope: Scope, user_header: str | None) -> str | None:
    """Who is asking, as presented: the bearer key, else the SSO user header (if honoured)."""
    headers = Headers(scope=scope)
    token = bearer_token(headers.get("authorization"))
    if token is not None:
        return "key:" + token
    user = headers.get(user_header, "").strip() if user_header else ""
    return "user:" + user if user else None


class RateLimit:
    def __init__(self, app: ASGIApp, buckets: TokenBuckets | None,
                 user_header: str | None = None) -> None:
        self.app, self.buckets, self.user_header = app, buckets, user_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        caller = _caller(scope, self.user_header) if scope["type"] == "http" else None
        if caller is not None and self.buckets is not None:
            wait = self.buckets.take(hashlib.sha256(caller.encode()).hexdigest())
            if wait > 0:
                retry = max(1, math.ceil(wait))
                response = error_response(
                    429, "rate_limited",
                    f"too many requests with this key; retry after {retry} s",
                    {"Retry-After": str(retry)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "body_too_large",
            f"the request body is larger than {self.max_bytes} bytes; send a smaller one",
            {"Connection": "close"})
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit():
            if int(length) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if "transfer-encoding" not in headers:  # HTTP/1.1: no length, no chunking: no body
            await self.app(scope, receive, send)
            return
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)
