"""NatsPolicyService: the policy service's rpc, with "nobody answered" as ``PolicyUnavailable``.

Org documents and approvals wait up to ``timeout``; the effective policy, asked on every read of
an OAuth or client-org agent's config, only ``effective_timeout``, so a page never hangs on policy.
"""

from __future__ import annotations

from mailbridge.config_api.adapters.rpc import ask
from mailbridge.config_api.domain.errors import PolicyUnavailable
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.messages import (
    ApproveSend,
    EffectivePolicy,
    GetEffectivePolicy,
    PolicyDocumentReply,
    SendAuthorization,
)
from mailbridge.shared.messages.policy import ClientOrgRequest, OrgRequest


class NatsPolicyService:
    def __init__(self, bus: NatsBus, timeout: float = 5.0, effective_timeout: float = 1.0) -> None:
        self._bus, self._timeout, self._effective_timeout = bus, timeout, effective_timeout

    async def document(self, request: OrgRequest | ClientOrgRequest) -> PolicyDocumentReply:
        return await ask(self._bus, request, PolicyDocumentReply, self._timeout, PolicyUnavailable)

    async def effective(self, request: GetEffectivePolicy) -> EffectivePolicy:
        return await ask(
            self._bus, request, EffectivePolicy, self._effective_timeout, PolicyUnavailable
        )

    async def approve(self, request: ApproveSend) -> SendAuthorization:
        return await ask(self._bus, request, SendAuthorization, self._timeout, PolicyUnavailable)
