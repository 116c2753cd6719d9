"""policy's NATS entrypoints: the rpc answers (queue group ``policy``) and the release consumer.

Every rpc handler returns its reply as JSON; a failed send event comes from a durable consumer, so a
reservation is released even if policy was down when the send failed. An org or client-org request
that does not decode is answered, never left to time out: ``invalid_input`` naming the fields.
"""

from __future__ import annotations

import logging
import time

from faststream import AckPolicy as HandlerAck
from faststream.nats import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    JStream,
    NatsBroker,
    NatsRouter,
    PullSub,
)

from mailbridge.policy import handlers
from mailbridge.policy.container import Container
from mailbridge.shared.messages import (
    AuthorizeSend,
    DeleteClientOrg,
    DeleteOrgConfig,
    GetClientOrg,
    GetEffectivePolicy,
    GetOrgConfig,
    MessageSendFailed,
    PolicyDocumentReply,
    PutClientOrg,
    PutOrgConfig,
)
from mailbridge.shared.streams import MAIL_EVT
from mailbridge.shared.undecodable import answering_undecodable

log = logging.getLogger(__name__)

QUEUE = "policy"


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
        reply = await handlers.authorize_send(request, client_orgs=c.client_orgs, quota=c.quota)
        c.metrics.decided(reply, time.perf_counter() - started)
        return reply.model_dump_json()

    @broker.subscriber(
        MessageSendFailed.subscription(),
        stream=JStream(MAIL_EVT.name, declare=False),
        durable="policy-send-failed",
        pull_sub=PullSub(batch_size=10, timeout=5.0),
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW, ack_policy=AckPolicy.EXPLICIT),
        ack_policy=HandlerAck.NACK_ON_ERROR,
    )
    async def send_failed(event: MessageSendFailed) -> None:
        if await handlers.release_after_failure(event, quota=c.quota):
            c.metrics.released.inc()


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
