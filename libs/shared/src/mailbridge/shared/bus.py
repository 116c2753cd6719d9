"""Publishing and requesting contract messages over a FastStream NATS broker.

Commands and events go to JetStream with ``Nats-Msg-Id`` set to the message's dedupe id (commands:
``command_id``; events: ``event_id``), so a retried publish is stored once. Requests are core NATS.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from faststream.nats import NatsBroker

from mailbridge.shared.messages import Message, Reply, Request
from mailbridge.shared.streams import stream_for

ReplyT = TypeVar("ReplyT", bound=Reply)


class Publisher(Protocol):
    """The one publishing port: a command or event to its stream, deduplicated by its id."""

    async def publish(self, message: Message) -> None: ...


class NatsBus:
    def __init__(self, broker: NatsBroker) -> None:
        self._broker = broker

    async def publish(self, message: Message) -> None:
        await self.publish_raw(
            message.nats_subject(), message.model_dump_json(by_alias=True), message.dedupe_id()
        )

    async def publish_raw(self, subject: str, payload: str, msg_id: str) -> None:
        """Publish an already-serialized message (the outbox relay's rows)."""
        await self._broker.publish(
            payload,
            subject,
            headers={"Nats-Msg-Id": msg_id, "content-type": "application/json"},
            stream=stream_for(subject).name,
        )

    async def request(self, request: Request, reply_type: type[ReplyT], timeout: float) -> ReplyT:
        response = await self._broker.request(
            request.model_dump_json(),
            request.nats_subject(),
            headers={"content-type": "application/json"},
            timeout=timeout,
        )
        return reply_type.model_validate_json(response.body)
