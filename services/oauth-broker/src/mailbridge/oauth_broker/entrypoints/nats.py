"""oauth-broker's NATS entrypoints: the rpc answers, in queue group ``oauth-broker``."""

from __future__ import annotations

from faststream.nats import NatsBroker

from mailbridge.oauth_broker.container import Container
from mailbridge.oauth_broker.handlers import flows, tokens
from mailbridge.shared.messages import (
    BeginOAuthFlow,
    CompleteOAuthFlow,
    GetAccessToken,
    GetOAuthFlow,
    RevokeGrant,
    StartOAuthFlow,
)

QUEUE = "oauth-broker"


def register(broker: NatsBroker, c: Container) -> None:
    @broker.subscriber(BeginOAuthFlow.subscription(), queue=QUEUE)
    async def flow_begin(request: BeginOAuthFlow) -> str:
        return (await flows.begin(request, c.flows)).model_dump_json()

    @broker.subscriber(StartOAuthFlow.subscription(), queue=QUEUE)
    async def flow_start(request: StartOAuthFlow) -> str:
        return (await flows.start(request, c.flows)).model_dump_json()

    @broker.subscriber(CompleteOAuthFlow.subscription(), queue=QUEUE)
    async def flow_complete(request: CompleteOAuthFlow) -> str:
        return (await flows.complete(request, c.flows)).model_dump_json()

    @broker.subscriber(GetOAuthFlow.subscription(), queue=QUEUE)
    async def flow_get(request: GetOAuthFlow) -> str:
        return (await flows.view(request.flow_id, c.flows)).model_dump_json()

    @broker.subscriber(GetAccessToken.subscription(), queue=QUEUE)
    async def access_token_get(request: GetAccessToken) -> str:
        return (await tokens.access_token(request, c.tokens)).model_dump_json()

    @broker.subscriber(RevokeGrant.subscription(), queue=QUEUE)
    async def grant_revoke(request: RevokeGrant) -> str:
        return (await tokens.revoke(request, c.tokens)).model_dump_json()
