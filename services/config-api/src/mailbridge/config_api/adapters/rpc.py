"""Asking another service over core NATS, with "nobody answered" as a ``ServiceUnavailable``."""

from __future__ import annotations

from collections.abc import Callable

import nats.errors

from mailbridge.config_api.domain.errors import ServiceUnavailable
from mailbridge.shared.bus import NatsBus, ReplyT
from mailbridge.shared.messages import Request

NO_ANSWER = (
    nats.errors.NoRespondersError,
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    TimeoutError,
)


async def ask(
    bus: NatsBus,
    request: Request,
    reply_type: type[ReplyT],
    timeout: float,
    unavailable: Callable[[], ServiceUnavailable],
) -> ReplyT:
    try:
        return await bus.request(request, reply_type, timeout)
    except NO_ANSWER as exc:
        raise unavailable() from exc
