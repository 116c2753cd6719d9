"""config-api's NATS entrypoints: the credentials and OAuth app rpc, the event consumers that
drive status, and the audit trail's consumers.

Durable consumers (explicit acks, redelivered on error) apply events even when no HTTP request
waits; every handler is idempotent, so a redelivery changes nothing twice. The audit trail has a
durable consumer of its own per stream it records from (MAIL_EVT, OAUTH_EVT: every subject), so
it neither waits on nor holds back the status consumers; an event is one entry however often it
is delivered (``source_id`` is unique).
"""

from __future__ import annotations

from typing import Any

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from faststream.nats.subscriber.usecases import LogicSubscriber

from mailbridge.config_api.container import Container
from mailbridge.config_api.handlers import (
    approvals,
    audit,
    connection_test,
    email_config,
    mailbox_status,
    oauth_app,
    sends,
)
from mailbridge.shared.messages import (
    ConnectionTested,
    GetCredentials,
    GetOAuthApp,
    GrantAuthorized,
    GrantRefreshFailed,
    GrantRevoked,
    MailboxPolled,
    MailboxPollFailed,
    Message,
    MessageHeld,
    MessageSendFailed,
    MessageSent,
)
from mailbridge.shared.runtime import durable_consumer
from mailbridge.shared.streams import MAIL_EVT, OAUTH_EVT, StreamDefinition

# config-api's own changes (CONFIG_EVT) are recorded in their transactions, not from the stream
AUDITED_STREAMS = (MAIL_EVT, OAUTH_EVT)


def _durable(
    broker: NatsBroker, message: type[Message], stream: StreamDefinition, name: str
) -> LogicSubscriber[Any]:
    """A durable pull consumer of our own, new events only, acked after the handler succeeds."""
    return _durable_on(broker, message.subscription(), stream, name)


def _durable_on(
    broker: NatsBroker, subject: str, stream: StreamDefinition, name: str
) -> LogicSubscriber[Any]:
    return durable_consumer(broker, subject, stream, f"config-api-{name}")


def register(broker: NatsBroker, c: Container) -> None:
    _register_status(broker, c)
    for stream in AUDITED_STREAMS:
        _register_audit(broker, c, stream)


def _register_audit(broker: NatsBroker, c: Container, stream: StreamDefinition) -> None:
    @_durable_on(broker, stream.subjects[0], stream, f"audit-{stream.name.lower()}")
    async def record_in_audit_trail() -> None:
        # the message from the context, as the mail-worker's commands: no thread hop per event
        msg: NatsMessage = broker.context.get_local("message")
        await audit.record_event(msg.raw_message.subject, msg.body, trail=c.audit)


def _register_status(broker: NatsBroker, c: Container) -> None:
    @broker.subscriber(GetCredentials.subscription(), queue=c.settings.credentials_queue)
    async def credentials_get(request: GetCredentials) -> str:
        reply = await email_config.get_credentials(request.agent_id, repo=c.repo, sealer=c.sealer)
        return reply.model_dump_json()

    @broker.subscriber(GetOAuthApp.subscription(), queue=c.settings.credentials_queue)
    async def oauth_app_get(request: GetOAuthApp) -> str:
        reply = await oauth_app.get_oauth_app(
            request.agent_id, repo=c.repo, sealer=c.sealer, policy=c.policy
        )
        return reply.model_dump_json()

    # no_reply: a JetStream subject; an empty answer would race the stream's ack to the publisher
    @broker.subscriber(ConnectionTested.subscription(), no_reply=True)
    async def test_result_for_waiting_request(result: ConnectionTested) -> None:
        c.results.deliver(result)

    @_durable(broker, ConnectionTested, MAIL_EVT, "connection-tested")
    async def record_test_result(result: ConnectionTested) -> None:
        await mailbox_status.record_test_result(result, repo=c.repo, clock=c.clock)

    @_durable(broker, MessageSent, MAIL_EVT, "message-sent")
    async def message_sent(event: MessageSent) -> None:
        await sends.record_send_outcome(event, repo=c.repo, ledger=c.ledger, clock=c.clock)

    @_durable(broker, MessageSendFailed, MAIL_EVT, "send-failed")
    async def message_send_failed(event: MessageSendFailed) -> None:
        await sends.record_send_outcome(event, repo=c.repo, ledger=c.ledger, clock=c.clock)

    @_durable(broker, MessageHeld, MAIL_EVT, "message-held")
    async def message_held(event: MessageHeld) -> None:
        await approvals.record_hold(event, approvals=c.approvals)

    @_durable(broker, MailboxPollFailed, MAIL_EVT, "poll-failed")
    async def poll_failed(event: MailboxPollFailed) -> None:
        await mailbox_status.record_poll_failure(
            event, repo=c.repo, clock=c.clock, policy=c.settings.poll_backoff()
        )

    @_durable(broker, MailboxPolled, MAIL_EVT, "polled")
    async def polled(event: MailboxPolled) -> None:
        await mailbox_status.record_poll_success(event, repo=c.repo)

    @_durable(broker, GrantAuthorized, OAUTH_EVT, "grant-authorized")
    async def grant_authorized(event: GrantAuthorized) -> None:
        await connection_test.test_after_authorization(event, repo=c.repo, commands=c.commands)

    @_durable(broker, GrantRefreshFailed, OAUTH_EVT, "refresh-failed")
    async def grant_refresh_failed(event: GrantRefreshFailed) -> None:
        await mailbox_status.record_mailbox_event(event, repo=c.repo, clock=c.clock)

    @_durable(broker, GrantRevoked, OAUTH_EVT, "grant-revoked")
    async def grant_revoked(event: GrantRevoked) -> None:
        await mailbox_status.record_mailbox_event(event, repo=c.repo, clock=c.clock)
