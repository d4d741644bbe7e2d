"""Background tasks: stop them the one way every service does."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


async def cancel(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` (``None`` is skipped) and wait until every one has ended.

    A task's own failure is logged, not raised: stopping must go on to release the rest. A
    cancellation of the caller still propagates.
    """
    live = [t for t in tasks if t is not None]
    for task in live:
        task.cancel()
    results = await asyncio.gather(*live, return_exceptions=True)
    for task, result in zip(live, results, strict=True):
        if isinstance(result, Exception):
            log.warning("task %s ended with %r while stopping", task.get_name(), result)
