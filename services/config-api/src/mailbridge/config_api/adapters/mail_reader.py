"""NatsMailReader: a mail-worker's read rpc (``rpc.mail.messages.*``), with "nobody answered" as
``WorkerUnavailable``. A read waits on the mail server, so it may take a few seconds."""

from __future__ import annotations

from mailbridge.config_api.adapters.rpc import ask
from mailbridge.config_api.domain.errors import WorkerUnavailable
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.messages import (
    FetchedMessage,
    GetMessage,
    ListMessages,
    MarkedSeen,
    MarkSeen,
    MessageList,
)


class NatsMailReader:
    def __init__(self, bus: NatsBus, timeout: float) -> None:
        self._bus, self._timeout = bus, timeout

    async def list_messages(self, request: ListMessages) -> MessageList:
        return await ask(self._bus, request, MessageList, self._timeout, WorkerUnavailable)

    async def get_message(self, request: GetMessage) -> FetchedMessage:
        return await ask(self._bus, request, FetchedMessage, self._timeout, WorkerUnavailable)

    async def mark_seen(self, request: MarkSeen) -> MarkedSeen:
        return await ask(self._bus, request, MarkedSeen, self._timeout, WorkerUnavailable)
