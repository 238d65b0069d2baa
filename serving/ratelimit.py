"""A token-bucket rate limit per key (a token's name, or a client address for failed authentications)."""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable

#: Buckets kept at most; when full, the refilled buckets (they limit nothing) go, then the oldest half.
MAX_KEYS = 100_000


class RateLimiter:
    """`rate` requests per second per key, with bursts of up to `burst`."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst < 1:
            raise ValueError("the rate limit needs rate > 0 and burst >= 1")
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens left, when)

    def _level(self, key: str, now: float) -> float:
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - then) * self.rate)

    def _retry_after(self, tokens: float) -> int:
        return max(1, math.ceil((1 - tokens) / self.rate))

    def acquire(self, key: str) -> int | None:
        """Take one request from `key`'s bucket: None if allowed, else the seconds to wait (Retry-After)."""
        now = self.clock()
        tokens = self._level(key, now)
        if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
            self._forget_full(now)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return self._retry_after(tokens)
        self._buckets[key] = (tokens - 1, now)
        return None

    def blocked(self, key: str) -> int | None:
        """The seconds to wait if `key`'s bucket is empty (Retry-After), else None; takes nothing."""
        tokens = self._level(key, self.clock())
        return self._retry_after(tokens) if tokens < 1 else None

    def _forget_full(self, now: float) -> None:
        kept = {k: v for k, v in self._buckets.items() if self._level(k, now) < self.burst}
        self._buckets = kept if len(kept) < MAX_KEYS else dict(list(kept.items())[MAX_KEYS // 2 :])


def failure_key(address: str) -> str:
    """The bucket of a client address's failed authentications: an IPv6 address's /64, the least a subscriber
    is given (one bucket per address would give an attacker 2^64 of them); an IPv4 address, IPv4-mapped
    or not, its own; anything else (no address known) as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv4Address):
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))
