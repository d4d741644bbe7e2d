"""Polling with a deadline, for tests that watch another process (no timed assertions)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(fn: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.05) -> T:
    """Call ``fn`` every ``interval`` seconds until it returns something truthy; return it.

    Fails the test with an AssertionError once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:g} s")
        time.sleep(interval)


async def wait_until(
    predicate: Callable[[], Any | Awaitable[Any]], timeout: float = 30.0, interval: float = 0.05
) -> None:
    """In a running loop: await until ``predicate()`` (a value or an awaitable) is truthy.

    Fails with ``TimeoutError`` once ``timeout`` seconds have passed.
    """
    async with asyncio.timeout(timeout):
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(interval)
