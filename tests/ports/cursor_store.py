"""What every mail-worker ``CursorStore`` promises: each mailbox's last cursor, or None."""

from __future__ import annotations

from mailbridge.mail_worker.domain.cursor import ApiCursor, Cursor
from mailbridge.mail_worker.ports import CursorStore
from mailbridge.shared.ids import new_id

AGENT_ID_ALPHABET = "acme:support@emea+1=x"
"""An agent id config-api accepts (its ``ID_PATTERN``: letters, digits and ``_-:@+=``)."""


class CursorStoreContract:
    """Not collected itself: a subclass names the implementation with ``make``."""

    async def make(self) -> CursorStore:
        raise NotImplementedError

    async def test_a_mailbox_never_polled_has_no_cursor(self) -> None:
        cursors = await self.make()
        assert await cursors.get(new_id("agent")) is None

    async def test_a_cursor_reads_back_as_it_was_put(self) -> None:
        cursors, agent_id = await self.make(), new_id("agent")
        await cursors.put(agent_id, Cursor(uidvalidity=1_700_000_000, last_uid=42))
        assert await cursors.get(agent_id) == Cursor(1_700_000_000, 42)

    async def test_the_last_cursor_put_is_the_one_read(self) -> None:
        cursors, agent_id = await self.make(), new_id("agent")
        await cursors.put(agent_id, Cursor(7, 42))
        await cursors.put(agent_id, Cursor(8, 3))  # a UIDVALIDITY change starts over lower
        assert await cursors.get(agent_id) == Cursor(8, 3)

    async def test_each_mailbox_has_its_own_cursor(self) -> None:
        cursors, first, second = await self.make(), new_id("agent"), new_id("agent")
        await cursors.put(first, Cursor(1, 10))
        await cursors.put(second, Cursor(2, 20))
        assert (await cursors.get(first), await cursors.get(second)) == (
            Cursor(1, 10),
            Cursor(2, 20),
        )

    async def test_any_agent_id_config_api_accepts_keeps_its_cursor(self) -> None:
        cursors, agent_id = await self.make(), f"{AGENT_ID_ALPHABET}-{new_id()}"
        await cursors.put(agent_id, Cursor(1, 10))
        assert await cursors.get(agent_id) == Cursor(1, 10)

    async def test_an_api_cursor_reads_back_as_it_was_put(self) -> None:
        cursors, agent_id = await self.make(), new_id("agent")
        cursor = ApiCursor("https://graph.test/delta?$deltatoken=a=b", 1_700_000_000.5, ("x", "y"))
        await cursors.put(agent_id, cursor)
        assert await cursors.get_api(agent_id) == cursor

    async def test_a_mailbox_that_changed_transport_starts_afresh(self) -> None:
        cursors, agent_id = await self.make(), new_id("agent")
        await cursors.put(agent_id, Cursor(1, 10))
        assert await cursors.get_api(agent_id) is None
        await cursors.put(agent_id, ApiCursor("123"))
        assert await cursors.get(agent_id) is None
        assert await cursors.get_api(agent_id) == ApiCursor("123")
