"""Live load of the upstreams, for the ``least_busy`` and ``latency`` routing strategies.

A public name's ``routing_strategy`` (catalog, or a routing rule for its targets) orders its
deployments *of equal priority* (priorities, BYOK, capabilities and deprecation still come
first):

* ``weighted`` (default): random, in proportion to the weights.
* ``least_busy``: fewest requests in flight on the provider, counted by this router, plus
  the queue the provider itself reports (vLLM's ``vllm:num_requests_waiting`` +
  ``vllm:num_requests_running`` from its ``/metrics``, scraped by the health-worker at each
  probe and published with the health event; other kinds: 0), divided by the weight. The
  in-flight count is this replica's own (exact and immediate); the vLLM queue is what every
  replica sent, as of the last probe.
* ``latency``: lowest recent time to first token of the deployment, an exponentially
  weighted mean (``ALPHA``) of this router's own answers (the first streamed chunk; for a
  non-streamed answer the whole answer); a deployment without a sample yet goes first, so
  each one is measured.

Ties keep the weighted random order.
"""

from __future__ import annotations

ALPHA = 0.2
"""Weight of the newest sample in the time-to-first-token mean (~ the last 10 answers)."""


class Load:
    """Counters kept by the gateway (single event loop, no locks) and the health follower."""

    __slots__ = ("inflight", "queue", "ttft")

    def __init__(self) -> None:
        self.inflight: dict[str, int] = {}  # provider id -> requests in flight from here
        self.queue: dict[str, float] = {}  # provider id -> its own reported queue
        self.ttft: dict[str, float] = {}  # deployment id -> mean time to first token (ms)

    def busy(self, provider_id: str) -> float:
        return self.inflight.get(provider_id, 0) + self.queue.get(provider_id, 0.0)

    def started(self, provider_id: str) -> None:
        self.inflight[provider_id] = self.inflight.get(provider_id, 0) + 1

    def ended(self, provider_id: str) -> None:
        n = self.inflight.get(provider_id, 0) - 1
        if n > 0:
            self.inflight[provider_id] = n
        else:
            self.inflight.pop(provider_id, None)

    def observe_ttft(self, deployment_id: str, ms: float) -> None:
        old = self.ttft.get(deployment_id)
        self.ttft[deployment_id] = ms if old is None else old + ALPHA * (ms - old)

    def set_queue(self, provider_id: str, waiting: float | None, running: float | None) -> None:
        if waiting is None and running is None:
            self.queue.pop(provider_id, None)
        else:
            self.queue[provider_id] = (waiting or 0.0) + (running or 0.0)
