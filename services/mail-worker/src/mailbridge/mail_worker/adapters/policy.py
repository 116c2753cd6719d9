"""Asking policy: whether a send may go (``NatsSendPolicy``, ``rpc.policy.send.authorize``), and
whom an agent knows (``NatsContactBook``, ``rpc.policy.contacts.known``).

No answer is never a yes: a policy service that is down, or one that could not decide (its
database away), makes the send wait and retry. It is never a "no" either: a message read
meanwhile is screened without ``first_contact`` (null), and is not held back for it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from mailbridge.shared.bus import NatsBus
from mailbridge.shared.errors import ErrorCode, ErrorInfo, RetryableError
from mailbridge.shared.messages import (
    AuthorizeSend,
    KnownContacts,
    KnownContactsReply,
    SendAuthorization,
)
from mailbridge.shared.messages.policy import MAX_CONTACTS_ASKED

log = logging.getLogger(__name__)

CONTACTS_TIMEOUT_SECONDS = 1.0  # a read waits no longer for a first-contact flag
NO_ANSWER = (NoRespondersError, NatsTimeoutError, TimeoutError)


class NatsSendPolicy:
    def __init__(self, bus: NatsBus, timeout: float) -> None:
        self._bus, self._timeout = bus, timeout

    async def authorize(self, request: AuthorizeSend) -> SendAuthorization:
        try:
            decision = await self._bus.request(request, SendAuthorization, self._timeout)
        except NO_ANSWER as exc:
            raise RetryableError(ErrorCode.INTERNAL, "policy did not answer.") from exc
        if decision.undecided:
            why = decision.error or ErrorInfo.of(ErrorCode.INTERNAL)
            raise RetryableError(
                why.code, info=why, retry_after_seconds=decision.retry_after_seconds
            )
        return decision


class NatsContactBook:
    def __init__(self, bus: NatsBus, timeout: float = CONTACTS_TIMEOUT_SECONDS) -> None:
        self._bus, self._timeout = bus, timeout

    async def known(self, agent_id: str, addresses: Sequence[str]) -> set[str] | None:
        asked = KnownContacts(agent_id=agent_id, addresses=list(addresses)[:MAX_CONTACTS_ASKED])
        try:
            reply = await self._bus.request(asked, KnownContactsReply, self._timeout)
        except NO_ANSWER:
            log.warning("policy did not say whom %s knows; first_contact left null", agent_id)
            return None
        return None if reply.error is not None else set(reply.known)
