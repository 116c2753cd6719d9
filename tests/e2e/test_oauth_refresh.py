"""Refreshing across broker replicas: fifty callers while the token is due, a slow provider,
two replicas → one refresh at the provider, the same new token for everyone, and the rotated
refresh token is the one stored. A replica killed while it holds the refresh lock leaves none."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from nats.aio.client import Client

from mailbridge.devstack.environment import Infrastructure
from mailbridge.devstack.sandbox import SandboxProvider
from mailbridge.devstack.system import RunningSystem, running_system
from mailbridge.shared.crypto import Sealer, generate_key_spec, parse_keys
from mailbridge.shared.messages import AccessTokenReply, GetAccessToken
from tests.e2e.databases import own_infrastructure, stack_api, stack_bus
from tests.e2e.oauth_agents import OAuthAgent, authorize, flow_status, oauth_agent, sign_in
from tests.e2e.oauth_browser import Browser
from tests.e2e.workers import kill, replicas, wait_ready
from tests.support.waiting import eventually

api, bus = stack_api, stack_bus  # this module's stack's client fixtures

BROKER = "oauth-broker"
REPLICAS = [f"{BROKER}-1", f"{BROKER}-2"]
CALLERS = 50
SHORT_LIFETIME = 60  # under the broker's five-minute margin: the token is due at once


@pytest.fixture(scope="module")
def keys() -> str:
    return generate_key_spec("refresh")


@pytest.fixture(scope="module")
def stack(
    postgres_dsn: str,
    sandbox: SandboxProvider,
    keys: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningSystem]:
    """config-api, policy and two oauth-broker replicas (no mail-worker: only tokens matter)."""
    directory = tmp_path_factory.mktemp("oauth-refresh")
    with own_infrastructure(postgres_dsn, directory / "nats", "refreshdb") as (nats_url, dsn):
        infra = Infrastructure(nats_url, dsn, keys, None, "WARNING", providers=sandbox.settings())

        def two_brokers(processes: list) -> list:  # type: ignore[type-arg]
            return [p for s in processes for p in (replicas(s, 2) if s.name == BROKER else [s])]

        with running_system(
            infra,
            only={"config-api", "policy", BROKER},
            arrange=two_brokers,
            sink=directory / "services.log",
        ) as system:
            yield system


@pytest.fixture(autouse=True)
def provider_as_usual(sandbox: SandboxProvider) -> Iterator[None]:
    yield
    sandbox.admin.clear_failures()
    sandbox.admin.set_token_lifetime(provider="microsoft", seconds=3600)
    sandbox.admin.revoke_used_refresh_tokens(provider="microsoft", revoke=False)


async def authorized_with_a_due_token(
    api: httpx.AsyncClient, stack: RunningSystem, sandbox: SandboxProvider
) -> OAuthAgent:
    sandbox.admin.set_token_lifetime(provider="microsoft", seconds=SHORT_LIFETIME)
    agent = await oauth_agent(api, stack.base_url, sandbox, "microsoft")
    begun = await authorize(api, agent)
    with Browser(sandbox.ca_file) as browser:
        sign_in(browser, agent, begun["authorization_url"])
    assert (await flow_status(api, begun["flow_id"]))["status"] == "completed"
    sandbox.admin.set_token_lifetime(provider="microsoft", seconds=3600)
    return agent


async def token(bus: Client, agent: OAuthAgent, timeout: float = 60) -> AccessTokenReply:
    request = GetAccessToken(agent_id=agent.agent_id)
    answer = await bus.request(request.nats_subject(), request.model_dump_json().encode(), timeout)
    return AccessTokenReply.model_validate_json(answer.data)


async def stored_refresh_token(stack: RunningSystem, keys: str, agent: OAuthAgent) -> str:
    connection = await asyncpg.connect(stack.database_url)
    try:
        sealed = await connection.fetchval(
            "SELECT sealed_tokens FROM oauth_broker.grants WHERE agent_id = $1", agent.agent_id
        )
    finally:
        await connection.close()
    return str(json.loads(Sealer(parse_keys(keys)).open(sealed, agent.agent_id))["refresh_token"])


async def test_fifty_callers_on_two_replicas_cause_one_refresh(
    api: httpx.AsyncClient, stack: RunningSystem, sandbox: SandboxProvider, bus: Client, keys: str
) -> None:
    agent = await authorized_with_a_due_token(api, stack, sandbox)
    sandbox.admin.revoke_used_refresh_tokens(provider="microsoft")
    sandbox.admin.fail(provider="microsoft", endpoint="refresh", kind="slow", delay_seconds=1.5)
    before = sandbox.admin.counters()["microsoft"]["refresh"]

    replies = await asyncio.gather(*(token(bus, agent) for _ in range(CALLERS)))

    assert [reply.error for reply in replies] == [None] * CALLERS
    assert (
        len({reply.access_token.get_secret_value() for reply in replies if reply.access_token}) == 1
    )
    assert sandbox.admin.counters()["microsoft"]["refresh"] == before + 1
    latest = sandbox.admin.grant(provider="microsoft", email=agent.email)["latest_refresh_token"]
    assert await stored_refresh_token(stack, keys, agent) == latest


async def test_a_replica_killed_holding_the_lock_leaves_no_deadlock(
    api: httpx.AsyncClient, stack: RunningSystem, sandbox: SandboxProvider, bus: Client
) -> None:
    agent = await authorized_with_a_due_token(api, stack, sandbox)
    stack.supervisor.stop_service(REPLICAS[1])  # every request goes to the replica to be killed
    sandbox.admin.fail(
        provider="microsoft", endpoint="refresh", kind="slow", delay_seconds=20, times=1
    )
    before = sandbox.admin.counters()["microsoft"]["refresh"]
    stuck = asyncio.ensure_future(token(bus, agent, timeout=30))

    async def refresh_reached_provider() -> bool:
        return bool(sandbox.admin.counters()["microsoft"]["refresh"] > before)

    await eventually(refresh_reached_provider, what="the refresh reached the provider")
    kill(stack.supervisor, REPLICAS[0])  # holding the grant's row lock, waiting on the provider
    stack.supervisor.start_service(REPLICAS[1])
    wait_ready(stack.supervisor, REPLICAS[1])
    started = time.monotonic()

    reply = await token(bus, agent)

    assert reply.error is None and reply.access_token is not None
    assert time.monotonic() - started < 15  # the lock went with the dead connection
    assert sandbox.admin.counters()["microsoft"]["refresh"] == before + 2
    stuck.cancel()
    stack.supervisor.start_service(REPLICAS[0])
    wait_ready(stack.supervisor, REPLICAS[0])
