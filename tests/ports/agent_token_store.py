"""What every ``AgentTokenStore`` promises: a made token is found by its id and verifies, is
listed (live ones only, of that agent only) and, once revoked, no longer verifies."""

from __future__ import annotations

from mailbridge.config_api.domain import agent_tokens as tokens
from mailbridge.config_api.ports import AgentTokenStore
from mailbridge.shared.ids import new_id


class AgentTokenStoreContract:
    """Not collected itself: a subclass names the implementation with ``make``."""

    async def make(self) -> AgentTokenStore:
        raise NotImplementedError

    async def test_a_made_token_is_found_and_verifies_as_its_agent(self) -> None:
        store, agent_id = await self.make(), new_id("agent")
        made, stored = await store.create(agent_id, "org-1", "claude")
        token_id, secret = tokens.parse(made.token) or ("", "")
        principal = tokens.verify(await store.find(token_id), secret)
        assert principal is not None
        assert (principal.org_id, principal.agent_id) == ("org-1", agent_id)
        assert (stored.name, stored.token_id) == ("claude", token_id)

    async def test_only_the_agents_live_tokens_are_listed(self) -> None:
        store, agent_id = await self.make(), new_id("agent")
        first, _ = await store.create(agent_id, "org-1", None)
        second, _ = await store.create(agent_id, "org-1", None)
        await store.create(new_id("agent"), "org-1", None)
        assert await store.revoke(agent_id, first.token_id)
        assert [t.token_id for t in await store.live(agent_id)] == [second.token_id]

    async def test_a_revoked_token_no_longer_verifies_and_is_revoked_once(self) -> None:
        store, agent_id = await self.make(), new_id("agent")
        made, _ = await store.create(agent_id, "org-1", None)
        assert not await store.revoke(new_id("agent"), made.token_id), "another agent's"
        assert await store.revoke(agent_id, made.token_id)
        assert not await store.revoke(agent_id, made.token_id)
        token_id, secret = tokens.parse(made.token) or ("", "")
        assert tokens.verify(await store.find(token_id), secret) is None
