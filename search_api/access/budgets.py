"""Request budgets, charged to whoever the request turns out to be (the body's size is
limited before that, in search_api/http/body_limit.py).

RequestLimits: a token bucket per resolved principal (an API key's id, or the signed-in SSO
  user), charged once the caller is known (deps.py), so that neither a fresh junk key per
  request nor anyone else's requests change a caller's budget; and a bucket per client address
  for failed sign-ins (401), so that guessing keys or user names costs the guesser, never a
  named user. Over either: 429 with Retry-After.
StreamSlots: open event streams (GET /mcp), which hold a connection and a descriptor for as
  long as they stay open, bounded per principal and per server process; the next one is 429.
"""

from __future__ import annotations

import logging
import math
import resource
import threading
import time
from collections import Counter, OrderedDict

from search_api.errors import ApiError, Unauthorized
from search_api.identity.principal import Principal

MAX_BUCKETS = 10_000  # distinct callers remembered; the least recently seen is forgotten first
DESCRIPTOR_SHARE = 4  # streams may hold at most a quarter of the process's file descriptors
log = logging.getLogger(__name__)


class TokenBuckets:
    """`rate_per_minute` tokens a minute per caller, at most `burst` saved up."""

    def __init__(self, rate_per_minute: int, burst: int) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None, cost: float = 1.0) -> float:
        """Spend `cost` tokens (at most the burst); 0.0 when allowed, else the seconds until
        they are available."""
        now = time.monotonic() if now is None else now
        cost = min(cost, self.burst)
        with self._lock:
            tokens, seen = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - seen) * self.rate)
            wait = 0.0
            if tokens >= cost:
                tokens -= cost
            else:
                wait = (cost - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
            return wait


class RateLimited(ApiError):
    def __init__(self, wait: float, whose: str) -> None:
        retry = max(1, math.ceil(wait))
        super().__init__(429, "rate_limited", f"too many requests {whose}; retry after {retry} s",
                         {"Retry-After": str(retry)})


class RequestLimits:
    """Per-principal request budgets and per-address budgets of failed sign-ins (None: off)."""

    def __init__(self, principals: TokenBuckets | None, failures: TokenBuckets | None) -> None:
        self.principals, self.failures = principals, failures

    def charge(self, principal: Principal, cost: int = 1) -> None:
        """Spend `cost` of the principal's requests (an expensive read costs what the searches
        it is worth would); RateLimited when it has not that many left."""
        if self.principals is not None and cost > 0:
            wait = self.principals.take(principal.key_id, cost=cost)
            if wait > 0:
                raise RateLimited(wait, "with this key" if not principal.key_id.startswith(
                    "user:") else "by this user")

    def refusal(self, address: str | None, refused: Unauthorized) -> ApiError:
        """What a failed sign-in from `address` gets: its 401, or 429 once that address has
        failed too often."""
        if self.failures is not None:
            wait = self.failures.take(address or "unknown")
            if wait > 0:
                return RateLimited(wait, "without a valid key from this address")
        return refused


class TooManyStreams(ApiError):
    def __init__(self, whose: str, limit: int) -> None:
        super().__init__(429, "too_many_streams",
                         f"{whose} already holds {limit} open event streams, the most allowed; "
                         "close one (or let it idle out) before opening another",
                         {"Retry-After": "5"})


class StreamSlots:
    """At most `per_key` open streams per principal and `per_server` in this process."""

    def __init__(self, per_key: int, per_server: int) -> None:
        self.per_key, self.per_server = per_key, per_server
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    @classmethod
    def for_process(cls, per_key: int, per_server: int) -> StreamSlots:
        """`per_server` lowered, if need be, to a quarter of the descriptors this process may
        open (RLIMIT_NOFILE), so that held streams always leave room for everyone's requests."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        room = per_server if soft == resource.RLIM_INFINITY else \
            max(1, min(per_server, soft // DESCRIPTOR_SHARE))
        if room < per_server:
            log.warning("at most %d open event streams (PKS_STREAMS_PER_SERVER is %d): a "
                        "quarter of this process's %d file descriptors", room, per_server, soft)
        return cls(min(per_key, room), room)

    def open(self, key_id: str) -> None:
        """Take a slot for one stream of `key_id`; TooManyStreams when none is left."""
        with self._lock:
            if self._open[key_id] >= self.per_key:
                raise TooManyStreams("this key" if not key_id.startswith("user:")
                                     else "this user", self.per_key)
            if self._open.total() >= self.per_server:
                raise TooManyStreams("this server", self.per_server)
            self._open[key_id] += 1

    def close(self, key_id: str) -> None:
        with self._lock:
            self._open[key_id] -= 1
            if self._open[key_id] <= 0:
                del self._open[key_id]

    def held(self, key_id: str | None = None) -> int:
        with self._lock:
            return self._open.total() if key_id is None else self._open[key_id]
