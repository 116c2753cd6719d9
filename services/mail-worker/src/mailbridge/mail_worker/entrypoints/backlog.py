"""The shared consumer's backlog as metrics: what an operator scales the workers on.

JetStream knows how many commands wait in the consumer (``num_pending``) and how many are out
with a replica unacknowledged (``num_ack_pending``); a service part reads the consumer's info every
``MAILBRIDGE_CONSUMER_METRICS_SECONDS`` into the worker's gauges. A failed read keeps the last
values and is tried again at the next turn (the consumer does not exist until the first replica's
subscriber made it).
"""

from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext

from mailbridge.mail_worker.entrypoints.metrics import WorkerMetrics
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.background import BackgroundLoop
from mailbridge.shared.streams import MAIL_CMD

log = logging.getLogger(__name__)


class ConsumerBacklog(BackgroundLoop):
    """A service part: the backlog read while the worker runs."""

    name = "consumer-backlog"

    def __init__(self, settings: MailWorkerSettings, metrics: WorkerMetrics) -> None:
        self._durable, self._every = settings.consumer_durable, settings.consumer_metrics_seconds
        self._metrics = metrics
        self._js: JetStreamContext | None = None

    async def start(self, js: JetStreamContext) -> None:  # type: ignore[override]  # a Part's
        self._js = js
        super().start()

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # NATS away, or no consumer yet: the next turn reads again
                log.debug("the consumer's backlog was not read: %r", exc)
            await asyncio.sleep(self._every)

    async def refresh(self) -> None:
        assert self._js is not None, "started"
        info = await self._js.consumer_info(MAIL_CMD.name, self._durable)
        self._metrics.consumer_backlog(info.num_pending or 0, info.num_ack_pending or 0)
