"""What oauth-broker's handlers use: ports, nothing concrete (built in bootstrap.py)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from mailbridge.oauth_broker.adapters.postgres import Grant, LockedGrant
from mailbridge.oauth_broker.adapters.provider import Discovery
from mailbridge.oauth_broker.domain.flows import Flow, FlowSecrets, Stage
from mailbridge.oauth_broker.domain.providers import ProviderProfile
from mailbridge.oauth_broker.domain.tokens import TokenResponse
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages import Event, OAuthApp, OAuthAppReply, Provider


class FlowStore(Protocol):
    async def add(self, flow: Flow, flow_secrets: FlowSecrets) -> None: ...
    async def get(self, flow_id: str) -> Flow | None: ...
    async def bind(
        self, flow_id: str, binding_hash: str, now: datetime
    ) -> tuple[Flow, FlowSecrets] | None: ...
    async def claim(self, flow_id: str) -> FlowSecrets | None: ...
    async def finish(
        self,
        flow_id: str,
        stage: Stage,
        *,
        error: ErrorInfo | None = None,
        email: str | None = None,
    ) -> None: ...


class GrantStore(Protocol):
    async def get(self, agent_id: str) -> Grant | None: ...
    def locked(self, agent_id: str) -> AbstractAsyncContextManager[LockedGrant]: ...
    async def authorize(
        self, grant: Grant, *, flow_id: str, email: str, events: Sequence[Event]
    ) -> None: ...
    async def idle(self, refreshed_before: datetime, limit: int = 100) -> list[str]: ...


class AppSource(Protocol):
    async def app_of(self, agent_id: str) -> OAuthAppReply: ...


class AuthorizationServers(Protocol):
    async def discovery(self, profile: ProviderProfile) -> Discovery: ...
    async def exchange_code(
        self,
        profile: ProviderProfile,
        app: OAuthApp,
        *,
        code: str,
        verifier: str,
        redirect_uri: str,
    ) -> TokenResponse: ...
    async def refresh(
        self, profile: ProviderProfile, app: OAuthApp, *, refresh_token: str, scope: str | None
    ) -> TokenResponse: ...
    async def revoke(self, url: str, token: str) -> bool: ...
    async def verified_claims(
        self, profile: ProviderProfile, id_token: str, *, client_id: str, nonce: str
    ) -> dict[str, Any]: ...


class RefreshOutcomes(Protocol):
    """Counts each call of a provider's token endpoint for a refresh by how it ended:
    ``refreshed``, or the failure's kind (``revoked``, ``misconfigured``, ``transient``)."""

    def refresh_ended(self, provider: Provider, outcome: str) -> None: ...
