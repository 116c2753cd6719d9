"""NatsOAuthBroker: the oauth-broker's flow rpc, with "nobody answered" as ``BrokerUnavailable``."""

from __future__ import annotations

from mailbridge.config_api.adapters.rpc import ask
from mailbridge.config_api.domain.errors import BrokerUnavailable
from mailbridge.shared.bus import NatsBus, ReplyT
from mailbridge.shared.messages import (
    BeginOAuthFlow,
    CompleteOAuthFlow,
    GetOAuthFlow,
    OAuthFlowBegun,
    OAuthFlowCompleted,
    OAuthFlowStarted,
    OAuthFlowView,
    Request,
    StartOAuthFlow,
)


class NatsOAuthBroker:
    def __init__(self, bus: NatsBus, timeout: float = 5.0, provider_timeout: float = 30.0) -> None:
        """``provider_timeout``: beginning reads the provider's discovery document, completing
        redeems the code and verifies the id_token there; both may take longer than a question
        the broker answers from its own tables."""
        self._bus, self._timeout, self._provider_timeout = bus, timeout, provider_timeout

    async def begin(self, request: BeginOAuthFlow) -> OAuthFlowBegun:
        return await self._ask(request, OAuthFlowBegun, self._provider_timeout)

    async def start(self, request: StartOAuthFlow) -> OAuthFlowStarted:
        return await self._ask(request, OAuthFlowStarted)

    async def complete(self, request: CompleteOAuthFlow) -> OAuthFlowCompleted:
        return await self._ask(request, OAuthFlowCompleted, self._provider_timeout)

    async def flow(self, flow_id: str) -> OAuthFlowView:
        return await self._ask(GetOAuthFlow(flow_id=flow_id), OAuthFlowView)

    async def _ask(
        self, request: Request, reply_type: type[ReplyT], timeout: float | None = None
    ) -> ReplyT:
        return await ask(
            self._bus, request, reply_type, timeout or self._timeout, BrokerUnavailable
        )
