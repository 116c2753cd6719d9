"""The mail-worker's one JetStream consumer: every command subject, shared by all replicas.

Acknowledgement is chosen per outcome, here at the edge:
  done (a test whose result is a failure included) → ack
  RetryableError (4xx, timeout, a dependency down) → nack with backoff
  PermanentError, undecodable or unknown command   → term (after a failure event, where one exists)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from faststream import AckPolicy as HandlerAck
from faststream.nats import AckPolicy, ConsumerConfig, JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from mailbridge.mail_worker.entrypoints.metrics import WorkerMetrics
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared import subjects
from mailbridge.shared.errors import PermanentError, RetryableError
from mailbridge.shared.messages import Command
from mailbridge.shared.streams import MAIL_CMD

log = logging.getLogger(__name__)

CommandHandler = Callable[[bytes, bool], Awaitable[None]]
"""A command's body, and whether this is its last delivery (no retry will follow)."""
BACKOFF_SECONDS = (1.0, 5.0, 15.0, 30.0, 60.0)


def route_key(subject: str) -> str:
    """``cmd.mail.connection.test.v1.a1`` → ``cmd.mail.connection.test.v1``."""
    return subject.rsplit(".", 1)[0]


def register(
    broker: NatsBroker,
    settings: MailWorkerSettings,
    routes: Mapping[str, CommandHandler],
    metrics: WorkerMetrics,
) -> None:
    @broker.subscriber(
        MAIL_CMD.subjects[0],
        stream=JStream(MAIL_CMD.name, declare=False),
        durable=settings.consumer_durable,
        pull_sub=PullSub(batch_size=settings.concurrency, timeout=5.0),
        max_workers=settings.concurrency,
        config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=settings.max_deliver,
            ack_wait=settings.ack_wait_seconds,
        ),
        ack_policy=HandlerAck.MANUAL,
    )
    async def on_command() -> None:
        # Not a ``msg: NatsMessage`` parameter: fast_depends resolves Context() parameters with a
        # synchronous function, which it runs in a worker thread, one thread hop per command.
        msg: NatsMessage = broker.context.get_local("message")
        subject = msg.raw_message.subject
        handler = routes.get(route_key(subject))
        if handler is None:
            log.error("no handler for %s; terminating it", subject)
            await msg.reject()
            return
        started = time.perf_counter()
        result = await _settle(msg, handler, subject, settings)
        metrics.settled(route_key(subject), result, time.perf_counter() - started)


async def apply_consumer_settings(js: JetStreamContext, settings: MailWorkerSettings) -> None:
    """The durable consumer outlives every replica and keeps the config it was created with, so a
    replica whose ack wait or max deliveries differ writes its own (both are editable on the
    server): a changed setting takes effect when the replicas restart; the last one started wins."""
    try:
        info = await js.consumer_info(MAIL_CMD.name, settings.consumer_durable)
    except NotFoundError:
        return  # the subscriber creates it, with these settings
    config = info.config
    wanted = (settings.ack_wait_seconds, settings.max_deliver)
    if (config.ack_wait, config.max_deliver) == wanted:
        return
    log.warning(
        "consumer %s: ack wait %ss and max deliveries %s become %ss and %s",
        settings.consumer_durable, config.ack_wait, config.max_deliver, *wanted,
    )  # fmt: skip
    config.ack_wait, config.max_deliver = wanted
    await js.add_consumer(MAIL_CMD.name, config=config)


async def _settle(
    msg: NatsMessage, handler: CommandHandler, subject: str, settings: MailWorkerSettings
) -> str:
    """Run the handler and settle the delivery; answers how: ``ack``, ``retry`` or ``term``."""
    last = msg.raw_message.metadata.num_delivered >= settings.max_deliver
    keepalive = asyncio.create_task(_keep_in_progress(msg, settings.ack_wait_seconds / 3))
    try:
        await handler(msg.body, last)
    except RetryableError as exc:
        attempt = msg.raw_message.metadata.num_delivered
        delay = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1]
        log.warning("retrying %s in %.0fs: %s", subject, delay, exc.code)
        await msg.nack(delay=delay)
        return "retry"
    except (PermanentError, ValidationError) as exc:
        log.error("terminating %s: %s", subject, exc)
        await msg.reject()
        return "term"
    finally:
        keepalive.cancel()
    await msg.ack()
    return "ack"


async def _keep_in_progress(msg: NatsMessage, every: float) -> None:
    """A long send tells the server it is alive, so it is not redelivered midway."""
    while True:
        await asyncio.sleep(every)
        await msg.in_progress()


def route_of(command: type[Command]) -> str:
    return route_key(subjects.render(command.subject_template, "x"))
