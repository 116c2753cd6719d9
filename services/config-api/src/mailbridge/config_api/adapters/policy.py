"""NatsPolicyService: the policy service's rpc, with "nobody answered" as ``PolicyUnavailable``.

Org documents wait up to ``timeout``; the effective policy, asked on every read of an OAuth or
client-org agent's config, only ``effective_timeout``, so a page never hangs on policy.
"""

from __future__ import annotations

import nats.errors

from mailbridge.config_api.domain.errors import PolicyUnavailable
from mailbridge.shared.bus import NatsBus, ReplyT
from mailbridge.shared.messages import (
    EffectivePolicy,
    GetEffectivePolicy,
    PolicyDocumentReply,
    Request,
)
from mailbridge.shared.messages.policy import ClientOrgRequest, OrgRequest

_NO_ANSWER = (
    nats.errors.NoRespondersError,
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    TimeoutError,
)


class NatsPolicyService:
    def __init__(self, bus: NatsBus, timeout: float = 5.0, effective_timeout: float = 1.0) -> None:
        self._bus, self._timeout, self._effective_timeout = bus, timeout, effective_timeout

    async def document(self, request: OrgRequest | ClientOrgRequest) -> PolicyDocumentReply:
        return await self._ask(request, PolicyDocumentReply, self._timeout)

    async def effective(self, request: GetEffectivePolicy) -> EffectivePolicy:
        return await self._ask(request, EffectivePolicy, self._effective_timeout)

    async def _ask(self, request: Request, reply_type: type[ReplyT], timeout: float) -> ReplyT:
        try:
            return await self._bus.request(request, reply_type, timeout)
        except _NO_ANSWER as exc:
            raise PolicyUnavailable() from exc
