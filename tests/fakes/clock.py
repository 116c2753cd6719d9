"""A clock that stands still, for handlers that stamp times."""

from __future__ import annotations

from datetime import UTC, datetime


class FixedClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current
