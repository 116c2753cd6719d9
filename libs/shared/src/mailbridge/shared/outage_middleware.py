"""A JetStream delivery whose handler met the database away comes back in a few seconds, not at
once.

A durable consumer acknowledged after its handler succeeds (``NACK_ON_ERROR``) naks a failed
delivery without a delay, and JetStream redelivers it at once: with PostgreSQL stopped, every
event in such a consumer went round in a tight loop, a traceback each time (thousands in ten
seconds). This broker middleware naks it with ``REDELIVERY_DELAY_SECONDS`` instead and logs one
warning a delivery; nothing is lost, the event is handled once the database is back. Any other
error, and a core NATS request (an rpc: there is nothing to nak), is left as it was.
"""

from __future__ import annotations

import logging
from typing import Any

from faststream import BaseMiddleware
from faststream._internal.basic_types import AsyncFuncAny
from faststream.message import StreamMessage
from faststream.nats.message import NatsMessage

from mailbridge.shared.postgres import DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)

REDELIVERY_DELAY_SECONDS = 5.0  # a PostgreSQL restart takes seconds


class WaitingOutDatabaseOutages(BaseMiddleware):
    async def consume_scope(self, call_next: AsyncFuncAny, msg: StreamMessage[Any]) -> Any:
        try:
            return await call_next(msg)
        except DATABASE_UNAVAILABLE as exc:
            if not (isinstance(msg, NatsMessage) and _from_jetstream(msg)):
                raise
            log.warning(
                "database unavailable handling %s; redelivered in %.0fs: %r",
                msg.raw_message.subject, REDELIVERY_DELAY_SECONDS, exc,
            )  # fmt: skip
            await msg.nack(delay=REDELIVERY_DELAY_SECONDS)  # settled: the ack policy keeps it
            return None


def _from_jetstream(msg: NatsMessage) -> bool:
    return (msg.raw_message.reply or "").startswith("$JS.ACK.")
