"""What every ``UiSessionStore`` promises: a link is exchanged once, a session is found by its
secret, renewed while it lives, ended, and dropped a day after its end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from mailbridge.config_api.domain.api_keys import hash_secret
from mailbridge.config_api.domain.ui_sessions import UiSession, new_secret
from mailbridge.config_api.ports import UiSessionStore
from mailbridge.shared.ids import new_id

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIFETIME = timedelta(minutes=15)


def session_at(created_at: datetime = NOW) -> UiSession:
    return UiSession(
        session_id=new_id("uis"),
        agent_id=new_id("agent"),
        org_id="org-1",
        expires_at=created_at + LIFETIME,
        exchanged=False,
        created_at=created_at,
    )


class UiSessionStoreContract:
    """Not collected itself: a subclass names the implementation with ``make``."""

    async def make(self) -> UiSessionStore:
        raise NotImplementedError

    async def created(
        self, store: UiSessionStore | None = None, at: datetime = NOW
    ) -> tuple[UiSessionStore, UiSession, str]:
        """A store (a new one unless given) with a new session; and its link's hash."""
        store, session, link_hash = (
            store or await self.make(),
            session_at(at),
            hash_secret(new_secret()),
        )
        await store.create(session, link_hash)
        return store, session, link_hash

    async def exchanged(self) -> tuple[UiSessionStore, UiSession, str]:
        """A store with a session exchanged at ``NOW``; and its secret's hash."""
        store, session, link_hash = await self.created()
        secret_hash = hash_secret(new_secret())
        assert await store.exchange(link_hash, secret_hash, NOW) is not None
        return store, session, secret_hash

    # Exchange ---------------------------------------------------------------------------------

    async def test_an_exchanged_link_answers_its_session_found_from_then_on_by_its_secret(
        self,
    ) -> None:
        store, session, link_hash = await self.created()
        secret_hash = hash_secret(new_secret())
        assert await store.find(secret_hash) is None
        exchanged = await store.exchange(link_hash, secret_hash, NOW)
        assert exchanged == UiSession(**{**session.__dict__, "exchanged": True})
        assert await store.find(secret_hash) == exchanged

    async def test_a_link_is_exchanged_once_and_the_first_secret_keeps_working(self) -> None:
        store, session, link_hash = await self.created()
        first, second = hash_secret(new_secret()), hash_secret(new_secret())
        assert await store.exchange(link_hash, first, NOW) is not None
        assert await store.exchange(link_hash, second, NOW) is None
        assert await store.find(second) is None
        found = await store.find(first)
        assert found is not None and found.session_id == session.session_id

    async def test_of_concurrent_exchanges_of_one_link_exactly_one_wins(self) -> None:
        store, _, link_hash = await self.created()
        secrets = [hash_secret(new_secret()) for _ in range(8)]
        won = await asyncio.gather(*(store.exchange(link_hash, s, NOW) for s in secrets))
        assert sum(session is not None for session in won) == 1

    async def test_an_expired_or_unknown_link_is_not_exchanged(self) -> None:
        store, session, link_hash = await self.created()
        secret_hash = hash_secret(new_secret())
        assert await store.exchange(link_hash, secret_hash, session.expires_at) is None
        assert await store.exchange(hash_secret(new_secret()), secret_hash, NOW) is None
        assert await store.find(secret_hash) is None

    async def test_a_link_hash_is_not_a_secret(self) -> None:
        store, _, link_hash = await self.created()
        await store.exchange(link_hash, hash_secret(new_secret()), NOW)
        assert await store.find(link_hash) is None

    async def test_each_session_is_its_own(self) -> None:
        store, mine, my_link = await self.created()
        _, theirs, their_link = await self.created(store)
        my_secret = hash_secret(new_secret())
        await store.exchange(my_link, my_secret, NOW)
        found = await store.find(my_secret)
        assert found is not None and found.agent_id == mine.agent_id
        exchanged = await store.exchange(their_link, hash_secret(new_secret()), NOW)
        assert exchanged is not None and exchanged.agent_id == theirs.agent_id

    # Renew and end ----------------------------------------------------------------------------

    async def test_renewing_a_live_session_moves_its_end(self) -> None:
        store, session, secret_hash = await self.exchanged()
        later = session.expires_at + timedelta(minutes=10)
        renewed = await store.renew(session.session_id, later, NOW + timedelta(minutes=10))
        assert renewed is not None and renewed.expires_at == later
        assert await store.find(secret_hash) == renewed

    async def test_an_expired_session_is_not_renewed_and_stays_expired(self) -> None:
        store, session, secret_hash = await self.exchanged()
        renewed = await store.renew(session.session_id, NOW + 2 * LIFETIME, session.expires_at)
        assert renewed is None
        found = await store.find(secret_hash)
        assert found is not None and found.expires_at == session.expires_at

    async def test_a_session_never_exchanged_is_not_renewed(self) -> None:
        store, session, _ = await self.created()
        assert await store.renew(session.session_id, NOW + LIFETIME, NOW) is None

    async def test_an_ended_session_is_found_no_more_and_not_renewed(self) -> None:
        store, session, secret_hash = await self.exchanged()
        await store.end(session.session_id)
        assert await store.find(secret_hash) is None
        assert await store.renew(session.session_id, NOW + LIFETIME, NOW) is None

    async def test_a_session_a_day_past_its_end_is_dropped_when_another_is_made(self) -> None:
        store, session, secret_hash = await self.exchanged()
        await self.created(store, at=session.expires_at + timedelta(hours=23))
        assert await store.find(secret_hash) is not None  # still tells "expired"
        await self.created(store, at=session.expires_at + timedelta(days=1, seconds=1))
        assert await store.find(secret_hash) is None
