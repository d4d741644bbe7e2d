"""Rate limits: token buckets per (subject, limit), refilled over one minute.

This replica's own counters: the fallback when no shared store is configured (or it is
unreachable); :mod:`turnout_router.shared` counts the same limits across replicas.
"""

from __future__ import annotations

from dataclasses import dataclass

from turnout_common.errors import RateLimited, RequestTooLarge

WINDOW_S = 60.0
"""Every rate limit is per minute: no ``Retry-After`` is longer than this."""


class Buckets:
    """Token buckets per (subject, limit): capacity = the per-minute limit, refilled linearly.

    A bucket never goes below ``-limit`` (settling a request's real tokens may put it in
    debt, at most one window's worth), so no wait is ever longer than the window.
    """

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state: dict[str, list[float]] = {}

    def _level(self, key: str, limit: int, now: float) -> list[float]:
        st = self._state.get(key)
        if st is None:
            st = self._state[key] = [float(limit), now]
        else:
            st[0] = min(float(limit), st[0] + (now - st[1]) * (limit / WINDOW_S))
            st[1] = now
        return st

    def take(self, key: str, limit: int | None, amount: float, now: float) -> float:
        """Take ``amount``; returns 0 when allowed, else the seconds until it would be (at
        most the window; an amount larger than the limit never fits and takes nothing)."""
        if not limit:
            return 0.0
        if amount > limit:
            return WINDOW_S
        st = self._level(key, limit, now)
        if st[0] >= amount:
            st[0] -= amount
            return 0.0
        return min(WINDOW_S, (amount - st[0]) / (limit / WINDOW_S))

    def adjust(self, key: str, limit: int | None, delta: float) -> None:
        """Charge (or refund) ``delta`` after the fact, e.g. actual vs estimated tokens."""
        st = self._state.get(key)
        if limit and st is not None:
            st[0] = max(-float(limit), min(float(limit), st[0] - delta))

    def remaining(self, key: str, limit: int, now: float) -> tuple[int, float]:
        """(what is left now, seconds until the bucket is full again)."""
        st = self._level(key, limit, now)
        left = max(0.0, st[0])
        return int(left), (limit - st[0]) / (limit / WINDOW_S)


@dataclass(slots=True, frozen=True)
class Limit:
    """One subject's per-minute limits, and who set them (for the error message)."""

    subject: str
    rpm: int | None
    tpm: int | None
    owner: str


def check_rates(buckets: Buckets, limits: list[Limit], tokens: int, now: float) -> None:
    """Take one request and ``tokens`` from every limit, or nothing at all.

    A request larger than a tokens-per-minute limit can never pass: 413
    ``request_too_large`` before anything is taken. Otherwise 429 ``rate_limit_exceeded``
    (``Retry-After`` at most the window) naming the limit that refused it; what the limits
    checked before it took is given back.
    """
    check_size(limits, tokens)
    taken: list[tuple[str, int, float]] = []
    for lim in limits:
        for suffix, limit, amount, unit in (
            (":rpm", lim.rpm, 1.0, "requests"),
            (":tpm", lim.tpm, float(tokens), "tokens"),
        ):
            if not limit:
                continue
            key = lim.subject + suffix
            wait = buckets.take(key, limit, amount, now)
            if wait:
                for k, lmt, amt in taken:
                    buckets.adjust(k, lmt, -amt)
                raise limited(lim, unit, limit, wait)
            taken.append((key, limit, amount))


def check_size(limits: list[Limit], tokens: int) -> None:
    """413 ``request_too_large`` for a request larger than a tokens-per-minute limit."""
    for lim in limits:
        if lim.tpm and tokens > lim.tpm:
            raise RequestTooLarge(
                f"this request needs about {tokens} tokens, more than the {lim.owner}'s limit "
                f"of {lim.tpm} tokens per minute: it can never pass; send a shorter prompt or "
                "a smaller max_tokens",
                param="max_tokens",
            )


def limited(lim: Limit, unit: str, limit: int, wait: float) -> RateLimited:
    """429 ``rate_limit_exceeded`` naming the limit that refused."""
    return RateLimited(
        f"the {lim.owner}'s rate limit of {limit} {unit} per minute is reached; "
        f"retry in {wait:.1f}s",
        retry_after=wait,
    )


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``850ms``, ``12.5s``, ``1m0s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    return f"{int(seconds // 60)}m{round(seconds % 60)}s"


def rate_headers(buckets: Buckets, limits: list[Limit], now: float) -> list[tuple[str, str]]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` of the tightest limits."""
    rpm: tuple[int, float, float] | None = None
    tpm: tuple[int, float, float] | None = None
    for lim in limits:  # one pass, no intermediate list: every limited request runs this
        if lim.rpm:
            left, reset = buckets.remaining(lim.subject + ":rpm", lim.rpm, now)
            if rpm is None or left < rpm[1]:
                rpm = (lim.rpm, left, reset)
        if lim.tpm:
            left, reset = buckets.remaining(lim.subject + ":tpm", lim.tpm, now)
            if tpm is None or left < tpm[1]:
                tpm = (lim.tpm, left, reset)
    return _headers(rpm, tpm)


def tightest(levels: list[tuple[str, int, float, float]]) -> list[tuple[str, str]]:
    """The headers from ``(suffix, limit, remaining, reset seconds)`` of every limit."""
    best: dict[str, tuple[int, float, float]] = {}
    for sfx, limit, left, reset in levels:
        held = best.get(sfx)
        if held is None or left < held[1]:
            best[sfx] = (limit, left, reset)
    return _headers(best.get(":rpm"), best.get(":tpm"))


def _headers(
    rpm: tuple[int, float, float] | None, tpm: tuple[int, float, float] | None
) -> list[tuple[str, str]]:
    """The six headers from the tightest ``(limit, remaining, reset seconds)`` of each unit."""
    out: list[tuple[str, str]] = []
    if rpm is not None:
        out.append(("x-ratelimit-limit-requests", str(rpm[0])))
        out.append(("x-ratelimit-remaining-requests", str(max(0, int(rpm[1])))))
        out.append(("x-ratelimit-reset-requests", _duration(rpm[2])))
    if tpm is not None:
        out.append(("x-ratelimit-limit-tokens", str(tpm[0])))
        out.append(("x-ratelimit-remaining-tokens", str(max(0, int(tpm[1])))))
        out.append(("x-ratelimit-reset-tokens", _duration(tpm[2])))
    return out
