"""A token the provider refused (401) is refreshed once, on a real PostgreSQL: fifty callers on
two replicas reporting the same refused token make one refresh at the sandbox provider (its
counters say so); a caller reporting an older token gets the current one, no refresh (the refresh
tests' counting token endpoint says so); a refused token is never answered again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace

import httpx
import pytest
from pydantic import SecretStr

from mailbridge.devstack.sandbox import SandboxAdmin, SandboxProvider
from mailbridge.oauth_broker.adapters.provider import HttpAuthorizationServers
from mailbridge.oauth_broker.handlers.tokens import TokenDeps, access_token
from mailbridge.oauth_broker.settings import GRAPH_SCOPES, OAuthBrokerSettings
from mailbridge.shared.errors import ErrorCode
from mailbridge.shared.messages import (
    AccessTokenReply,
    GetAccessToken,
    OAuthApp,
    OAuthAppReply,
    Provider,
    TokenResource,
)
from tests.integration import test_sandbox_provider as flows
from tests.integration.test_oauth_broker_refresh import (
    AGENT,
    KEYS,
    CountingTokenEndpoint,
    a_grant_due_for_refresh,
    database,
    replica,
)

# Fixtures of other modules: a fresh migrated database per test; the sandbox and its levers.
sandbox, http, admin = flows.sandbox, flows.http, flows.admin
__all__ = ["admin", "database", "http", "sandbox"]


def refused(token: str) -> GetAccessToken:
    return GetAccessToken(agent_id=AGENT, refused=SecretStr(token))


def tokens_of(replies: list[AccessTokenReply]) -> set[str | None]:
    return {r.access_token.get_secret_value() if r.access_token else None for r in replies}


@dataclass(frozen=True)
class SandboxApp:
    """The agent's Microsoft app, registered at the sandbox, as config-api would answer it."""

    client: flows.Client

    async def app_of(self, agent_id: str) -> OAuthAppReply:
        secret = SecretStr(self.client.secret)
        app = OAuthApp(provider=Provider.MICROSOFT, client_id=self.client.client_id,
                       client_secret=secret)  # fmt: skip
        return OAuthAppReply(agent_id=agent_id, app=app)


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    """What the replicas opened, closed after the test."""
    async with AsyncExitStack() as opened:
        yield opened


async def sandbox_replica(
    stack: AsyncExitStack, dsn: str, sandbox: SandboxProvider, app: flows.Client
) -> TokenDeps:
    """A broker replica (its own pool on the shared database) whose token endpoint is the
    sandbox's, over its TLS."""
    env = {key.removeprefix("MAILBRIDGE_").lower(): v for key, v in sandbox.settings().items()}
    settings = OAuthBrokerSettings.model_validate(env | {"database_url": dsn, "sealing_keys": KEYS})
    servers = HttpAuthorizationServers(ca_file=str(sandbox.ca_file), timeout=10)
    await servers.start(None)  # type: ignore[arg-type]  # its client needs no JetStream
    stack.push_async_callback(servers.stop)
    deps, pool = await replica(dsn, CountingTokenEndpoint())
    stack.push_async_callback(pool.close)
    return replace(deps, apps=SandboxApp(app), servers=servers, settings=settings)


async def signed_in_grant(deps: TokenDeps, app: flows.Client) -> str:
    """The agent authorized at the sandbox as the broker asks; its access token, an hour left."""
    tokens = app.sign_in(GRAPH_SCOPES)
    await a_grant_due_for_refresh(deps, seconds_left=3600)
    async with deps.grants.locked(AGENT) as locked:
        assert locked.grant is not None
        access = locked.grant.tokens.access[TokenResource.API]
        stored = locked.grant.tokens.model_copy(update={
            "refresh_token": tokens["refresh_token"],
            "access": {TokenResource.API: access.model_copy(update={"token": tokens["access_token"]})},
        })  # fmt: skip
        await locked.save_tokens(stored, deps.clock.now())
    return str(tokens["access_token"])


async def test_fifty_callers_refused_the_same_token_cause_one_refresh_at_the_provider(
    database: str, sandbox: SandboxProvider, http: httpx.Client, admin: SandboxAdmin,
    stack: AsyncExitStack,
) -> None:  # fmt: skip
    app = flows.Client(http, admin, "microsoft")
    first = await sandbox_replica(stack, database, sandbox, app)
    second = await sandbox_replica(stack, database, sandbox, app)
    token = await signed_in_grant(first, app)
    admin.fail("microsoft", "refresh", "slow", times=1, delay_seconds=0.5)  # callers overlap
    before = admin.counters()["microsoft"]["refresh"]

    replies = await asyncio.gather(
        *(access_token(refused(token), (first, second)[n % 2]) for n in range(50))
    )

    assert admin.counters()["microsoft"]["refresh"] == before + 1
    (new,) = tokens_of(replies)
    assert new is not None and new != token
    latest = admin.grant("microsoft", app.email)["latest_refresh_token"]
    stored = await first.grants.get(AGENT)
    assert stored is not None and stored.tokens.refresh_token == latest  # the rotated one


async def test_a_caller_refused_an_older_token_gets_the_current_one_unrefreshed(
    database: str,
) -> None:
    endpoint = CountingTokenEndpoint()
    deps, pool = await replica(database, endpoint)
    try:
        await a_grant_due_for_refresh(deps, seconds_left=3600)
        await access_token(refused("access-0"), deps)  # refreshed: access-1 now

        late = await access_token(refused("access-0"), deps)  # refused before the refresh

        assert endpoint.calls == 1
        assert tokens_of([late]) == {"access-1"}
    finally:
        await pool.close()


async def test_a_refused_token_is_not_answered_again_when_the_refresh_fails(
    database: str,
) -> None:
    """An outage at the token endpoint answers a still-valid token, but not the refused one."""
    endpoint = CountingTokenEndpoint(failure=(503, {}))
    deps, pool = await replica(database, endpoint)
    try:
        await a_grant_due_for_refresh(deps, seconds_left=3600)

        reply = await access_token(refused("access-0"), deps)

        assert reply.access_token is None
        assert reply.error is not None and reply.error.code is ErrorCode.PROVIDER_UNAVAILABLE
        stored = await deps.grants.get(AGENT)
        assert stored is not None and stored.dead is None
    finally:
        await pool.close()
