"""Agent tokens: any Bearer text is a principal or a refusal, never an exception; a token of
agent A reaches agent A's mail and sends and nothing of agent B's; it is no API key elsewhere;
revoked, it is refused on the very next request. config-api's real routes on fakes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from mailbridge.config_api.domain import agent_tokens as tokens
from mailbridge.config_api.handlers.agent_tokens import principal_of
from tests.fakes.config_api import MemoryAgentTokens
from tests.support.config_api_app import _client, api_client, container, problem

LIVE = tokens.new_token()
STORE = MemoryAgentTokens()
STORE.tokens[LIVE.token_id] = tokens.StoredAgentToken(
    LIVE.token_id, "a1", "acme", None, LIVE.secret_hash, datetime.now(UTC), revoked=False
)


@given(st.text() | st.from_regex(r"mbat_[0-9a-f]{16}_[A-Za-z0-9_\-]{43}", fullmatch=True))
def test_any_text_is_a_principal_or_nothing_never_an_error(text: str) -> None:
    found = asyncio.run(principal_of(text, store=STORE))
    assert found is None or text == LIVE.token


@given(st.text(min_size=1), st.characters(codec="ascii"))
def test_a_live_token_with_anything_appended_or_changed_is_refused(tail: str, last: str) -> None:
    changed = LIVE.token[:-1] + last
    assert asyncio.run(principal_of(LIVE.token + tail, store=STORE)) is None
    assert (asyncio.run(principal_of(changed, store=STORE)) is None) == (changed != LIVE.token)


def test_a_tokens_principal_reaches_its_agent_only() -> None:
    principal = asyncio.run(principal_of(LIVE.token, store=STORE))
    assert principal is not None and tokens.is_agent_token(principal)
    assert principal.can_access("acme", "a1")
    assert not principal.can_access("acme", "a2")
    assert not principal.can_access("acme")  # a route naming no agent


async def test_agent_a_token_reaches_a_and_nothing_of_b() -> None:
    fakes = container()
    async with api_client(fakes) as operator:
        (await operator.put("/bridge/agents/b1", json={"org_id": "acme"})).raise_for_status()
        made = await operator.post("/bridge/agents/a1/agent-tokens", json={"name": "bot"})
        token = made.json()["token"]
        async with _client(fakes, {"Authorization": f"Bearer {token}"}) as agent:
            own = await agent.get("/bridge/agents/a1/mail/messages")
            other = await agent.get("/bridge/agents/b1/mail/messages")
            sends_as_b = await agent.post(
                "/bridge/agents/b1/messages", json={"to": ["x@y.z"], "text": "x"}
            )
            config = await agent.get("/bridge/agents/a1/email-config")
            listed = await agent.get("/bridge/agents/a1/agent-tokens")
    assert made.status_code == 201 and made.json()["name"] == "bot"
    assert problem(own)["code"] == "not_configured", "past the auth: a1 has no config yet"
    assert (problem(other)["code"], problem(sends_as_b)["code"]) == ("not_found", "not_found")
    assert (config.status_code, listed.status_code) == (403, 403)


async def test_a_revoked_token_is_refused_on_the_next_request() -> None:
    fakes = container()
    async with api_client(fakes) as operator:
        made = (await operator.post("/bridge/agents/a1/agent-tokens")).json()
        [listed] = (await operator.get("/bridge/agents/a1/agent-tokens")).json()["tokens"]
        assert "token" not in listed
        revoked = await operator.delete(f"/bridge/agents/a1/agent-tokens/{made['token_id']}")
        again = await operator.delete(f"/bridge/agents/a1/agent-tokens/{made['token_id']}")
        async with _client(fakes, {"Authorization": f"Bearer {made['token']}"}) as agent:
            refused = await agent.get("/bridge/agents/a1/mail/messages")
    assert (revoked.status_code, again.status_code) == (204, 404)
    assert (refused.status_code, problem(refused)["code"]) == (401, "unauthorized")


async def test_no_token_is_made_for_an_agent_that_is_not_there() -> None:
    fakes = container()
    async with api_client(fakes) as operator:
        made = await operator.post("/bridge/agents/nobody/agent-tokens")
    assert problem(made)["code"] == "not_found"
