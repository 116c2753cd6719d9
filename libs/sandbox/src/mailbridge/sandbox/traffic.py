"""What the mail APIs were asked, and how many requests of one user were in flight at once.

A worker's pacing and concurrency limits are only testable if the provider watches them. The
log keeps the latest ``LOG_SIZE`` requests, so a long ``make run`` does not grow without end.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

LOG_SIZE = 10_000


@dataclass
class Traffic:
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_SIZE))
    in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight: dict[str, int] = field(default_factory=dict)

    def begin(self, email: str) -> float:
        """A request of ``email`` starts; when it started."""
        self.in_flight[email] += 1
        self.max_in_flight[email] = max(self.max_in_flight.get(email, 0), self.in_flight[email])
        return time.time()

    def end(self, at: float, method: str, path: str, status: int, email: str) -> None:
        self.in_flight[email] -= 1
        self.log.append(
            {"at": at, "method": method, "path": path, "status": status, "email": email}
        )

    def reset(self) -> None:
        """Forget the log and the peaks; requests still in flight stay counted."""
        self.log.clear()
        self.max_in_flight = {email: n for email, n in self.in_flight.items() if n > 0}
