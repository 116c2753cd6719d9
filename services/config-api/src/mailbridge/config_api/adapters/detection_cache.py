"""Settings detection's findings, kept in process for a few minutes, the most recent ones only.

Each replica keeps its own: a finding is cheap to make again, and a stale one only suggests.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from mailbridge.config_api.domain.detection import Finding


class MemoryDetectionCache:
    """Findings by domain for ``ttl_seconds``; beyond ``max_entries``, the oldest stored goes."""

    def __init__(
        self, ttl_seconds: float, max_entries: int, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl, self._max, self._now = ttl_seconds, max_entries, now
        self._entries: OrderedDict[str, tuple[float, Finding]] = OrderedDict()

    def get(self, domain: str) -> Finding | None:
        stored = self._entries.get(domain)
        if stored is None or self._now() - stored[0] >= self._ttl:
            return None
        return stored[1]

    def put(self, domain: str, finding: Finding) -> None:
        self._entries.pop(domain, None)
        self._entries[domain] = (self._now(), finding)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
