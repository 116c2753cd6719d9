"""Reading on demand over core NATS: ``rpc.mail.messages.list|get|seen``, answered by any
mail-worker (queue group ``mail-worker-read``) on the pooled IMAP sessions the polls use.

A request that does not decode is answered ``invalid_input`` (``ReadRefused``), never left to
time out; every other refusal is the reply's ``error`` (``handlers_read``).
"""

from __future__ import annotations

from faststream.nats import NatsBroker, NatsRouter

from mailbridge.mail_worker import handlers_read
from mailbridge.mail_worker.container import Container
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.messages import GetMessage, ListMessages, MarkSeen, ReadRefused
from mailbridge.shared.undecodable import answering_undecodable

QUEUE = "mail-worker-read"


def register(broker: NatsBroker, settings: MailWorkerSettings, c: Container) -> None:
    router = NatsRouter(middlewares=(answering_undecodable(lambda e: ReadRefused(error=e)),))
    ports = handlers_read.ReadPorts(c.credentials, c.browser, c.apis, c.contacts)

    @router.subscriber(ListMessages.subscription(), queue=QUEUE)
    async def messages_list(request: ListMessages) -> str:
        reply = await handlers_read.list_messages(request, ports)
        c.metrics.read(ListMessages, reply.error)
        return reply.model_dump_json(by_alias=True)

    @router.subscriber(GetMessage.subscription(), queue=QUEUE)
    async def messages_get(request: GetMessage) -> str:
        reply = await handlers_read.get_message(
            request, ports, limits=c.limits,
            raw_max_bytes=settings.read_raw_max_bytes,
        )  # fmt: skip
        c.metrics.read(GetMessage, reply.error)
        return reply.model_dump_json(by_alias=True)

    @router.subscriber(MarkSeen.subscription(), queue=QUEUE)
    async def messages_seen(request: MarkSeen) -> str:
        reply = await handlers_read.mark_seen(request, ports)
        c.metrics.read(MarkSeen, reply.error)
        return reply.model_dump_json(by_alias=True)

    broker.include_router(router)
