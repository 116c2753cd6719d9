"""The broker's refresh on a real PostgreSQL, with the token endpoint played by a fake that
counts: two 'replicas' (two pools, two in-process single-flights) and fifty callers make one
refresh; failures end, cool down or spare the grant by their class."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from mailbridge.oauth_broker.adapters.postgres import SCHEMA, Grant, PostgresGrants
from mailbridge.oauth_broker.domain.providers import ProviderProfile
from mailbridge.oauth_broker.domain.token_errors import classify
from mailbridge.oauth_broker.domain.tokens import AccessToken, TokenResponse, TokenSet
from mailbridge.oauth_broker.entrypoints.metrics import TokenMetrics
from mailbridge.oauth_broker.handlers.tokens import TokenDeps, access_token
from mailbridge.oauth_broker.settings import OAuthBrokerSettings
from mailbridge.shared.clock import SystemClock
from mailbridge.shared.crypto import Sealer, generate_key_spec, parse_keys
from mailbridge.shared.errors import ErrorCode
from mailbridge.shared.messages import (
    GetAccessToken,
    OAuthApp,
    OAuthAppReply,
    Provider,
    TokenResource,
)
from tests.integration.conftest import outbox_pool

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "oauth-broker" / "migrations"
KEYS = generate_key_spec("broker-it")
AGENT = "agent-refresh"


@dataclass
class CountingTokenEndpoint:
    """Microsoft-like: a new refresh token on every refresh, after ``delay`` seconds."""

    delay: float = 0.0
    failure: tuple[int, dict[str, Any]] | None = None
    refresh_tokens_seen: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.refresh_tokens_seen)

    async def refresh(
        self, profile: ProviderProfile, app: OAuthApp, *, refresh_token: str, scope: str | None
    ) -> TokenResponse:
        self.refresh_tokens_seen.append(refresh_token)
        await asyncio.sleep(self.delay)
        if self.failure is not None:
            raise classify(*self.failure)
        n = self.calls
        return TokenResponse(
            access_token=f"access-{n}", refresh_token=f"refresh-{n}", expires_in=3600
        )

    async def discovery(self, profile: ProviderProfile) -> Any:
        raise AssertionError("not used")

    async def exchange_code(self, *args: Any, **kwargs: Any) -> TokenResponse:
        raise AssertionError("not used")

    async def revoke(self, url: str, token: str) -> bool:
        return True

    async def verified_claims(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("not used")


class OwnApp:
    async def app_of(self, agent_id: str) -> OAuthAppReply:
        app = OAuthApp(provider=Provider.MICROSOFT, client_id="client", client_secret="s")  # type: ignore[arg-type]
        return OAuthAppReply(agent_id=agent_id, app=app)


@pytest.fixture
async def database(fresh_database: str) -> AsyncIterator[str]:
    async with outbox_pool(fresh_database, SCHEMA, MIGRATIONS):
        yield fresh_database


def settings(dsn: str) -> OAuthBrokerSettings:
    return OAuthBrokerSettings(database_url=dsn, sealing_keys=KEYS)  # type: ignore[arg-type]


async def replica(dsn: str, endpoint: CountingTokenEndpoint) -> tuple[TokenDeps, asyncpg.Pool]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    assert pool is not None
    grants = PostgresGrants(pool, Sealer(parse_keys(KEYS)), on_outbox_write=lambda: None)
    deps = TokenDeps(
        grants=grants, apps=OwnApp(), servers=endpoint, clock=SystemClock(), settings=settings(dsn),
        outcomes=TokenMetrics(CollectorRegistry()),
    )  # type: ignore[arg-type]  # fmt: skip
    return deps, pool


async def a_grant_due_for_refresh(deps: TokenDeps, *, seconds_left: float = 30) -> None:
    now = deps.clock.now()
    token = AccessToken(token="access-0", expires_at=now + timedelta(seconds=seconds_left))
    tokens = TokenSet(refresh_token="refresh-0", access={TokenResource.API: token})
    grant = Grant(
        AGENT, Provider.MICROSOFT, "a@contoso.example", "client", [], tokens, None, None, now
    )
    await deps.grants.authorize(grant, flow_id="no-flow", email=grant.email, events=[])


async def outbox_subjects(dsn: str) -> list[str]:
    connection = await asyncpg.connect(dsn)
    try:
        return [
            row["subject"]
            for row in await connection.fetch("SELECT subject FROM oauth_broker.outbox ORDER BY id")
        ]
    finally:
        await connection.close()


async def test_fifty_callers_on_two_replicas_cause_one_refresh(database: str) -> None:
    endpoint = CountingTokenEndpoint(delay=0.5)
    (first, pool_1), (second, pool_2) = (
        await replica(database, endpoint),
        await replica(database, endpoint),
    )
    try:
        await a_grant_due_for_refresh(first)
        request = GetAccessToken(agent_id=AGENT)

        replies = await asyncio.gather(
            *(access_token(request, (first, second)[n % 2]) for n in range(50))
        )

        assert endpoint.calls == 1
        assert {
            reply.access_token.get_secret_value() for reply in replies if reply.access_token
        } == {"access-1"}
        stored = await first.grants.get(AGENT)
        assert stored is not None and stored.tokens.refresh_token == "refresh-1"  # the rotated one
    finally:
        await pool_1.close()
        await pool_2.close()


async def test_the_next_refresh_sends_the_rotated_refresh_token(database: str) -> None:
    endpoint = CountingTokenEndpoint()
    deps, pool = await replica(database, endpoint)
    try:
        await a_grant_due_for_refresh(deps)
        await access_token(GetAccessToken(agent_id=AGENT), deps)
        async with deps.grants.locked(AGENT) as locked:  # an hour later: the token is due again
            assert locked.grant is not None
            await locked.save_tokens(
                locked.grant.tokens.model_copy(update={"access": {}}), deps.clock.now()
            )
        await access_token(GetAccessToken(agent_id=AGENT), deps)

        assert endpoint.refresh_tokens_seen == ["refresh-0", "refresh-1"]
    finally:
        await pool.close()


async def test_invalid_grant_ends_the_grant_and_says_so_once(database: str) -> None:
    endpoint = CountingTokenEndpoint(
        failure=(400, {"error": "invalid_grant", "error_codes": [50173]})
    )
    deps, pool = await replica(database, endpoint)
    try:
        await a_grant_due_for_refresh(deps, seconds_left=-1)
        first = await access_token(GetAccessToken(agent_id=AGENT), deps)
        again = await access_token(GetAccessToken(agent_id=AGENT), deps)

        assert first.error is not None and first.error.code is ErrorCode.OAUTH_TOKEN_REVOKED
        assert again.error == first.error
        assert endpoint.calls == 1  # no more attempts until re-authorized
        assert await outbox_subjects(database) == [f"evt.oauth.grant.refresh_failed.v1.{AGENT}"]
    finally:
        await pool.close()


async def test_a_refused_app_cools_down_instead_of_hammering(database: str) -> None:
    endpoint = CountingTokenEndpoint(
        failure=(401, {"error": "invalid_client", "error_codes": [7000222]})
    )
    deps, pool = await replica(database, endpoint)
    try:
        await a_grant_due_for_refresh(deps, seconds_left=-1)
        replies = [await access_token(GetAccessToken(agent_id=AGENT), deps) for _ in range(3)]

        assert {reply.error.code for reply in replies if reply.error} == {
            ErrorCode.OAUTH_APP_MISCONFIGURED
        }
        assert "expired" in (replies[0].error.message if replies[0].error else "")
        assert endpoint.calls == 1
        stored = await deps.grants.get(AGENT)
        assert stored is not None and stored.dead is None  # fixing the secret brings it back
    finally:
        await pool.close()


async def test_an_outage_keeps_a_token_that_still_works_and_changes_nothing(database: str) -> None:
    endpoint = CountingTokenEndpoint(failure=(503, {}))
    deps, pool = await replica(database, endpoint)
    try:
        await a_grant_due_for_refresh(deps, seconds_left=120)  # inside the margin, not expired
        reply = await access_token(GetAccessToken(agent_id=AGENT), deps)

        assert reply.error is None and reply.access_token is not None
        assert reply.access_token.get_secret_value() == "access-0"
        assert endpoint.calls == 3  # retried with backoff
        assert await outbox_subjects(database) == []

        await a_grant_due_for_refresh(deps, seconds_left=-1)
        expired = await access_token(GetAccessToken(agent_id=AGENT), deps)
        assert expired.error is not None and expired.error.code is ErrorCode.PROVIDER_UNAVAILABLE
        assert (await deps.grants.get(AGENT)).dead is None  # type: ignore[union-attr]
    finally:
        await pool.close()


async def test_a_refused_imap_token_leaves_the_microsoft_grant_working_for_graph(
    database: str,
) -> None:
    """Microsoft answers invalid_grant (AADSTS65001) for a resource never consented: that is the
    IMAP/SMTP token missing a permission, not the grant revoked."""
    endpoint = CountingTokenEndpoint(
        failure=(400, {"error": "invalid_grant", "error_codes": [65001]})
    )
    deps, pool = await replica(database, endpoint)
    try:
        await a_grant_due_for_refresh(deps, seconds_left=3600)
        mail = await access_token(GetAccessToken(agent_id=AGENT, resource=TokenResource.MAIL), deps)
        graph = await access_token(GetAccessToken(agent_id=AGENT), deps)

        assert mail.error is not None and mail.error.code is ErrorCode.OAUTH_SCOPE_MISSING
        assert "IMAP.AccessAsUser.All" in (mail.error.hint or "")
        assert graph.error is None and graph.access_token is not None
        assert (await deps.grants.get(AGENT)).dead is None  # type: ignore[union-attr]
        assert await outbox_subjects(database) == []
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("failure", "outcome"),
    [
        (None, "refreshed"),
        ((400, {"error": "invalid_grant"}), "revoked"),
        ((401, {"error": "invalid_client"}), "misconfigured"),
        ((503, {}), "transient"),
    ],
)
async def test_each_refresh_is_counted_by_how_it_ended(
    database: str, failure: tuple[int, dict[str, Any]] | None, outcome: str
) -> None:
    deps, pool = await replica(database, CountingTokenEndpoint(failure=failure))
    try:
        await a_grant_due_for_refresh(deps, seconds_left=-1)
        await access_token(GetAccessToken(agent_id=AGENT), deps)

        assert isinstance(deps.outcomes, TokenMetrics)
        counted = {
            sample.labels["outcome"]: sample.value
            for sample in deps.outcomes.refreshes.collect()[0].samples
            if sample.name.endswith("_total") and sample.labels["provider"] == "microsoft"
        }
        assert counted == {outcome: 1.0}  # the transient one once, after its retries
    finally:
        await pool.close()
