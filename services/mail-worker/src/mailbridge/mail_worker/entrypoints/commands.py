"""The mail-worker's one JetStream consumer: every command subject, shared by all replicas.

Each command kind has a runner, ``run_test``, ``run_send`` and ``run_poll``: decode, call the
handler, publish what it returns. Acknowledgement is chosen per outcome, here at the edge:
  done (a test whose result is a failure included) → ack
  RetryableError (4xx, timeout, a dependency down) → nack with backoff
  PermanentError, undecodable or unknown command   → term (after a failure event, where one exists)
  the last delivery of a RetryableError            → a failure event, then term
  a poll that failed with a MailbridgeError        → ``mailbox.poll_failed``, then term: config-api
    paces the mailbox's next polls (a retry now would be one more bad login)
  cut short by a stopping worker past its drain bound → nak at once (``slots.py``)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from faststream import AckPolicy as HandlerAck
from faststream.nats import AckPolicy, ConsumerConfig, JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from mailbridge.mail_worker import handlers
from mailbridge.mail_worker.container import Container
from mailbridge.mail_worker.domain.cursor import ApiCursor, Cursor
from mailbridge.mail_worker.entrypoints.slots import CommandSlots
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared import subjects
from mailbridge.shared.errors import ErrorCode, MailbridgeError, PermanentError, RetryableError
from mailbridge.shared.messages import (
    Command,
    Event,
    MessageHeld,
    MessageReceived,
    PollMailbox,
    SendMessage,
    TestConnection,
)
from mailbridge.shared.streams import MAIL_CMD

log = logging.getLogger(__name__)

CommandHandler = Callable[[bytes, bool], Awaitable[None]]
"""A command's body, and whether this is its last delivery (no retry will follow)."""
Runner = Callable[[Container, bytes, bool], Awaitable[None]]
BACKOFF_SECONDS = (1.0, 5.0, 15.0, 30.0, 60.0)


async def run_test(c: Container, body: bytes, last: bool) -> None:
    command = TestConnection.model_validate_json(body)
    if handlers.is_expired(command, c.clock):
        log.info("skipping expired connection test %s", command.command_id)
        return
    result = await handlers.test_connection(
        command, credentials=c.fresh_credentials, mailbox=c.mailbox,
        submission=c.submission, apis=c.apis,
    )  # fmt: skip
    await c.publisher.publish(result)


async def run_send(c: Container, body: bytes, last: bool) -> None:
    """Publish the outcome; a failure that no retry will mend is published, then termed."""
    command = await _decoded_send(c, body)
    try:
        route = functools.partial(
            handlers.send_route, apis=c.apis, submitter=c.submitter, sent_folder=c.sent_folder,
            sent_search=c.sent_search,
        )  # fmt: skip
        events = await handlers.send_message(
            command, credentials=c.credentials, route=route, ledger=c.ledger, policy=c.policy,
            content=c.content, clock=c.clock,
        )  # fmt: skip
    except PermanentError as exc:
        await _settled(c, command, [handlers.send_failed(command, exc)])
        raise
    except RetryableError as exc:
        if not last:
            raise
        await _settled(c, command, [handlers.send_failed(command, exc)])
        raise PermanentError(exc.code, exc.detail) from exc
    await _settled(c, command, events)


async def _decoded_send(c: Container, body: bytes) -> SendMessage:
    """A command that does not decode is never sent; when it names its agent and command id,
    its sender hears so (``failed``, ``invalid_input``) instead of waiting on ``queued``."""
    try:
        return SendMessage.model_validate_json(body)
    except ValidationError as exc:
        if (failure := handlers.undecodable_send(body, exc)) is not None:
            await c.publisher.publish(failure)
        raise PermanentError(ErrorCode.INVALID_INPUT, "undecodable send command") from exc


async def _settled(c: Container, command: SendMessage, events: list[Event]) -> None:
    """Publish the outcome; a settled send's out-of-band content goes, a held one's stays for
    when it is approved."""
    c.metrics.send_answered(command, events, c.clock.now())
    for event in events:
        await c.publisher.publish(event)
    held = any(isinstance(event, MessageHeld) for event in events)
    if command.content_ref is not None and not held:
        await c.content.delete(command.content_ref)


async def run_poll(c: Container, body: bytes, last: bool) -> None:
    """Publish each new message (deduplicated by mailbox and UID), then move the cursor; a
    failure is reported, not retried: the scheduler polls again when the backoff says. A mailbox
    a worker watches with IDLE is that worker's to read (it reads on its own at the poll pace)."""
    command = PollMailbox.model_validate_json(body)
    if c.watches.is_watched(command.agent_id):
        await _publish_all(c, handlers.polled(command))
        return
    try:
        events, cursor = await handlers.poll_mailbox(
            command, credentials=c.credentials, inbox=c.inbox, cursors=c.cursors, limits=c.limits,
            apis=c.apis,
        )  # fmt: skip
    except MailbridgeError as exc:
        failure = handlers.poll_failed(command, exc)
        c.metrics.poll_failed(failure.auth)  # counted before config-api can act on it
        await c.publisher.publish(failure)
        raise PermanentError(exc.code, exc.detail) from exc
    await publish_received(c, command.agent_id, events, cursor)
    await _publish_all(c, handlers.polled(command))
    if isinstance(cursor, Cursor):  # read over IMAP: watched from now on, where it can be
        await c.watches.offer(command.agent_id)


async def publish_received(
    c: Container, agent_id: str, events: Sequence[MessageReceived], cursor: Cursor | ApiCursor
) -> None:
    """The received messages (their senders checked against the agent's contacts), then the
    cursor past them: a crash in between republishes, and JetStream's dedupe (the event's id
    names mailbox and UID) drops the repeat."""
    await _publish_all(c, await handlers.with_first_contact(agent_id, events, c.contacts))
    await c.cursors.put(agent_id, cursor)


async def _publish_all(c: Container, events: Sequence[Event]) -> None:
    for event in events:
        await c.publisher.publish(event)


RUNNERS: dict[type[Command], Runner] = {
    TestConnection: run_test,
    SendMessage: run_send,
    PollMailbox: run_poll,
}


def route_key(subject: str) -> str:
    """``cmd.mail.connection.test.v1.a1`` → ``cmd.mail.connection.test.v1``."""
    return subject.rsplit(".", 1)[0]


def register(broker: NatsBroker, settings: MailWorkerSettings, c: Container) -> CommandSlots:
    """Subscribe the shared consumer; answers its slots, the part that drains it on stop."""
    routes: dict[str, CommandHandler] = {
        route_of(kind): functools.partial(runner, c) for kind, runner in RUNNERS.items()
    }
    slots = CommandSlots(settings.concurrency, settings.drain_seconds)
    subscriber = broker.subscriber(
        MAIL_CMD.subjects[0],
        stream=JStream(MAIL_CMD.name, declare=False),
        durable=settings.consumer_durable,
        # One at a time, and only into a free slot (``slots.run`` waits for one): a command
        # fetched is a command started, so a stopping worker holds none it has not begun. A
        # short pull request: one still open at the server when the worker stops may yet be
        # given a command, which then waits out the ack wait.
        pull_sub=PullSub(batch_size=1, timeout=1.0),
        config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=settings.max_deliver,
            ack_wait=settings.ack_wait_seconds,
        ),
        ack_policy=HandlerAck.MANUAL,
    )
    slots.fetched_by(subscriber)

    @subscriber
    async def on_command() -> None:
        # Not a ``msg: NatsMessage`` parameter: fast_depends resolves Context() parameters with a
        # synchronous function, which it runs in a worker thread, one thread hop per command.
        msg: NatsMessage = broker.context.get_local("message")
        await slots.run(msg, functools.partial(_dispatch, msg, routes, settings, c))

    return slots


async def _dispatch(
    msg: NatsMessage, routes: dict[str, CommandHandler], settings: MailWorkerSettings, c: Container
) -> None:
    subject = msg.raw_message.subject
    handler = routes.get(route_key(subject))
    if handler is None:
        log.error("no handler for %s; terminating it", subject)
        await msg.reject()
        return
    started = time.perf_counter()
    result = await _settle(msg, handler, subject, settings)
    c.metrics.settled(route_key(subject), result, time.perf_counter() - started)


class ConsumerSettings:
    """A service part: the shared consumer's settings written before the subscriber starts."""

    def __init__(self, settings: MailWorkerSettings) -> None:
        self._settings = settings

    async def start(self, js: JetStreamContext) -> None:
        await apply_consumer_settings(js, self._settings)

    async def stop(self) -> None:
        return None


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
        backoff = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1]
        delay = max(backoff, exc.retry_after_seconds or 0.0)  # never sooner than the provider said
        log.warning("retrying %s in %.0fs: %s", subject, delay, exc.code)
        await msg.nack(delay=delay)
        return "retry"
    except (PermanentError, ValidationError) as exc:
        log.error("terminating %s: %s", subject, exc)
        await msg.reject()
        return "term"
    except asyncio.CancelledError:  # the worker is stopping and the drain bound has passed
        log.warning("handing %s back unfinished", subject)
        await msg.nack()  # at once: another replica takes it now, and the ledger guards a send
        raise
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
