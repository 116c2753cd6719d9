"""policy's NATS entrypoints: the rpc answers (queue group ``policy``) and the event consumers.

Every rpc handler returns its reply as JSON. The events come from durable consumers of MAIL_EVT,
so nothing is missed while policy is down: a failed or rejected send releases its reservation, a
sent or received message teaches the agent's contacts (``first_contact`` approval). An org or
client-org request that does not decode is answered, never left to time out: ``invalid_input``
naming the fields.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faststream.nats import NatsBroker, NatsRouter
from faststream.nats.subscriber.usecases import LogicSubscriber

from mailbridge.policy import handlers
from mailbridge.policy import handlers_approval as approval
from mailbridge.policy.container import Container
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.messages import (
    ApproveSend,
    AuthorizeSend,
    DeleteClientOrg,
    DeleteOrgConfig,
    GetClientOrg,
    GetEffectivePolicy,
    GetOrgConfig,
    KnownContacts,
    Message,
    MessageReceived,
    MessageRejected,
    MessageSendFailed,
    MessageSent,
    PolicyDocumentReply,
    PutClientOrg,
    PutOrgConfig,
    SendAuthorization,
)
from mailbridge.shared.postgres import DATABASE_UNAVAILABLE
from mailbridge.shared.runtime import durable_consumer
from mailbridge.shared.streams import MAIL_EVT
from mailbridge.shared.undecodable import answering_undecodable

log = logging.getLogger(__name__)

QUEUE = "policy"
RETRY_AFTER_SECONDS = 5.0  # a PostgreSQL restart takes seconds; the worker's backoff grows beyond
DATABASE_AWAY = ErrorInfo.of(ErrorCode.DATABASE_UNAVAILABLE)


def register(broker: NatsBroker, c: Container) -> None:
    documents = NatsRouter(
        middlewares=(answering_undecodable(lambda error: PolicyDocumentReply(error=error)),)
    )
    _register_org_config(documents, c)
    _register_client_orgs(documents, c)
    broker.include_router(documents)

    @broker.subscriber(GetEffectivePolicy.subscription(), queue=QUEUE)
    async def effective_get(request: GetEffectivePolicy) -> str:
        reply = await handlers.effective_policy(
            request, apps=c.apps, client_orgs=c.client_orgs, sealer=c.sealer
        )
        return reply.model_dump_json()

    @broker.subscriber(AuthorizeSend.subscription(), queue=QUEUE)
    async def send_authorize(request: AuthorizeSend) -> str:
        started = time.perf_counter()
        try:
            reply = await handlers.authorize_send(
                request, client_orgs=c.client_orgs, quota=c.quota, holds=c.holds,
                contacts=c.contacts,
            )  # fmt: skip
        except DATABASE_UNAVAILABLE as exc:  # rules unread are never a yes: the send waits
            log.warning("send %s not decided, database unavailable: %r", request.command_id, exc)
            reply = SendAuthorization.retry_later(DATABASE_AWAY, RETRY_AFTER_SECONDS)
        c.metrics.decided(reply, time.perf_counter() - started)
        return reply.model_dump_json()

    @broker.subscriber(ApproveSend.subscription(), queue=QUEUE)
    async def send_approve(request: ApproveSend) -> str:
        client_org = await handlers.governing_client_org(request, c.client_orgs)
        reply = await approval.approve_send(request, client_org, holds=c.holds, quota=c.quota)
        return reply.model_dump_json()

    @broker.subscriber(KnownContacts.subscription(), queue=QUEUE)
    async def contacts_known(request: KnownContacts) -> str:
        reply = await approval.known_contacts(request, contacts=c.contacts)
        return reply.model_dump_json()

    @_durable(broker, MessageSendFailed, "policy-send-failed")
    async def send_failed(event: MessageSendFailed) -> None:
        if await handlers.release_after_failure(event, quota=c.quota):
            c.metrics.released.inc()

    _register_approval_events(broker, c)


def _durable(broker: NatsBroker, message: type[Message], durable: str) -> LogicSubscriber[Any]:
    return durable_consumer(broker, message.subscription(), MAIL_EVT, durable)


def _register_approval_events(broker: NatsBroker, c: Container) -> None:
    @_durable(broker, MessageRejected, "policy-send-rejected")
    async def send_rejected(event: MessageRejected) -> None:
        if await approval.release_after_rejection(event, quota=c.quota):
            c.metrics.released.inc()

    @_durable(broker, MessageSent, "policy-contacts-sent")
    async def written_to(event: MessageSent) -> None:
        await approval.remember_written_to(event, contacts=c.contacts)

    @_durable(broker, MessageReceived, "policy-contacts-received")
    async def heard_from(event: MessageReceived) -> None:
        await approval.remember_heard_from(event, contacts=c.contacts)


def _register_org_config(router: NatsRouter, c: Container) -> None:
    @router.subscriber(GetOrgConfig.subscription(), queue=QUEUE)
    async def org_get(request: GetOrgConfig) -> str:
        return (await handlers.get_org_config(request.org_id, apps=c.apps)).model_dump_json()

    @router.subscriber(PutOrgConfig.subscription(), queue=QUEUE)
    async def org_put(request: PutOrgConfig) -> str:
        reply = await handlers.put_org_config(request, apps=c.apps, sealer=c.sealer)
        return reply.model_dump_json()

    @router.subscriber(DeleteOrgConfig.subscription(), queue=QUEUE)
    async def org_delete(request: DeleteOrgConfig) -> str:
        await handlers.delete_org_config(request.org_id, apps=c.apps)
        return PolicyDocumentReply().model_dump_json()


def _register_client_orgs(router: NatsRouter, c: Container) -> None:
    @router.subscriber(GetClientOrg.subscription(), queue=QUEUE)
    async def client_org_get(request: GetClientOrg) -> str:
        reply = await handlers.get_client_org(request, client_orgs=c.client_orgs)
        return reply.model_dump_json()

    @router.subscriber(PutClientOrg.subscription(), queue=QUEUE)
    async def client_org_put(request: PutClientOrg) -> str:
        reply = await handlers.put_client_org(request, client_orgs=c.client_orgs)
        return reply.model_dump_json()

    @router.subscriber(DeleteClientOrg.subscription(), queue=QUEUE)
    async def client_org_delete(request: DeleteClientOrg) -> str:
        reply = await handlers.delete_client_org(request, client_orgs=c.client_orgs)
        return reply.model_dump_json()
