"""The mail-worker's one JetStream consumer: every command subject, shared by all replicas.

Acknowledgement is chosen per outcome, here at the edge:
  done (a test whose result is a failure included) → ack
  RetryableError (4xx, timeout, a dependency down) → nack with backoff
  PermanentError, undecodable or unknown command   → term (after a failure event, where one exists)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from faststream import AckPolicy as HandlerAck
from faststream.nats import AckPolicy, ConsumerConfig, JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared import subjects
from mailbridge.shared.errors import PermanentError, RetryableError
from mailbridge.shared.messages import TestConnection
from mailbridge.shared.streams import MAIL_CMD

log = logging.getLogger(__name__)

CommandHandler = Callable[[bytes], Awaitable[None]]
BACKOFF_SECONDS = (1.0, 5.0, 15.0, 30.0, 60.0)


def route_key(subject: str) -> str:
    """``cmd.mail.connection.test.v1.a1`` → ``cmd.mail.connection.test.v1``."""
    return subject.rsplit(".", 1)[0]


def register(
    broker: NatsBroker, settings: MailWorkerSettings, routes: dict[str, CommandHandler]
) -> None:
    @broker.subscriber(
        MAIL_CMD.subjects[0],
        stream=JStream(MAIL_CMD.name, declare=False),
        durable=settings.consumer_durable,
        pull_sub=PullSub(batch_size=1, timeout=5.0),
        config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT, max_deliver=settings.max_deliver, ack_wait=60
        ),
        ack_policy=HandlerAck.MANUAL,
    )
    async def on_command(msg: NatsMessage) -> None:
        subject = msg.raw_message.subject
        handler = routes.get(route_key(subject))
        if handler is None:
            log.error("no handler for %s; terminating it", subject)
            await msg.reject()
            return
        await _settle(msg, handler, subject)


async def _settle(msg: NatsMessage, handler: CommandHandler, subject: str) -> None:
    try:
        await handler(msg.body)
    except RetryableError as exc:
        attempt = msg.raw_message.metadata.num_delivered
        delay = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1]
        log.warning("retrying %s in %.0fs: %s", subject, delay, exc.code)
        await msg.nack(delay=delay)
    except (PermanentError, ValidationError) as exc:
        log.error("terminating %s: %s", subject, exc)
        await msg.reject()
    else:
        await msg.ack()


def test_route() -> str:
    return route_key(subjects.render(TestConnection.subject_template, "x"))
