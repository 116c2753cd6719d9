"""A flow's row on a real PostgreSQL: bound to one browser once, claimed by one callback once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from mailbridge.oauth_broker.adapters.postgres import SCHEMA, PostgresFlows
from mailbridge.oauth_broker.domain import flows as rules
from mailbridge.oauth_broker.domain.flows import Flow
from mailbridge.shared.clock import SystemClock
from mailbridge.shared.crypto import Sealer, generate_key_spec, parse_keys
from mailbridge.shared.messages import OAuthApp, Provider
from tests.integration.conftest import outbox_pool

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "oauth-broker" / "migrations"
NOW = SystemClock().now()


@pytest.fixture
async def flows(fresh_database: str) -> AsyncIterator[PostgresFlows]:
    async with outbox_pool(fresh_database, SCHEMA, MIGRATIONS) as pool:
        yield PostgresFlows(pool, Sealer(parse_keys(generate_key_spec("flows"))))


async def a_flow(flows: PostgresFlows, *, lifetime: timedelta = timedelta(minutes=10)) -> Flow:
    flow_id = rules.new_flow_id()
    flow_secrets = rules.new_secrets(flow_id)
    flow = Flow(
        flow_id=flow_id,
        agent_id="agent-1",
        provider=Provider.GOOGLE,
        app=OAuthApp(provider=Provider.GOOGLE, client_id="client"),
        issuer="https://accounts.google.com",
        nonce=rules.new_nonce(),
        scopes=["openid"],
        required_scopes=[],
        expected_email=None,
        ui_origin="https://ui.example",
        reauthorize=False,
        expires_at=NOW + lifetime,
        state_hash=rules.digest(flow_secrets.state),
    )
    await flows.add(flow, flow_secrets)
    return flow


async def test_a_flow_is_bound_to_the_first_browser_only(flows: PostgresFlows) -> None:
    flow = await a_flow(flows)

    bound = await flows.bind(flow.flow_id, rules.digest("browser-1"), NOW)
    again = await flows.bind(flow.flow_id, rules.digest("browser-2"), NOW)

    assert bound is not None and bound[0].flow_id == flow.flow_id
    assert bound[0].binding_hash == rules.digest("browser-1")
    assert bound[1].state.startswith(f"{flow.flow_id}.") and bound[1].verifier
    assert again is None
    stored = await flows.get(flow.flow_id)
    assert stored is not None and stored.binding_hash == rules.digest("browser-1")


async def test_an_expired_or_unknown_flow_cannot_be_bound(flows: PostgresFlows) -> None:
    expired = await a_flow(flows, lifetime=timedelta(seconds=-1))
    assert await flows.bind(expired.flow_id, rules.digest("b"), NOW) is None
    assert await flows.bind("flow_unknown", rules.digest("b"), NOW) is None


async def test_a_flow_is_claimed_once(flows: PostgresFlows) -> None:
    flow = await a_flow(flows)
    assert await flows.claim(flow.flow_id) is not None
    assert await flows.claim(flow.flow_id) is None
