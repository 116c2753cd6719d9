"""A token the provider refused (401) is refreshed once, on a real PostgreSQL, with the token
endpoint played by the refresh tests' counting fake: fifty callers on two replicas reporting the
same refused token make one refresh; a caller reporting an older token gets the current one."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from mailbridge.oauth_broker.handlers.tokens import access_token
from mailbridge.shared.errors import ErrorCode
from mailbridge.shared.messages import AccessTokenReply, GetAccessToken
from tests.integration.test_oauth_broker_refresh import (
    AGENT,
    CountingTokenEndpoint,
    a_grant_due_for_refresh,
    database,
    replica,
)

__all__ = ["database"]  # the fixture, a fresh migrated database per test


def refused(token: str) -> GetAccessToken:
    return GetAccessToken(agent_id=AGENT, refused=SecretStr(token))


def tokens_of(replies: list[AccessTokenReply]) -> set[str | None]:
    return {r.access_token.get_secret_value() if r.access_token else None for r in replies}


async def test_fifty_callers_refused_the_same_token_cause_one_refresh(database: str) -> None:
    endpoint = CountingTokenEndpoint(delay=0.5)
    (first, pool_1), (second, pool_2) = (
        await replica(database, endpoint),
        await replica(database, endpoint),
    )
    try:
        await a_grant_due_for_refresh(first, seconds_left=3600)  # far from due: only refused

        replies = await asyncio.gather(
            *(access_token(refused("access-0"), (first, second)[n % 2]) for n in range(50))
        )

        assert endpoint.calls == 1
        assert tokens_of(replies) == {"access-1"}
    finally:
        await pool_1.close()
        await pool_2.close()


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
