"""What every ``AuditLog`` promises: one entry per source id, only for a known agent, pages newest
first by (occurred_at, id) that entries recorded meanwhile never shift, and the filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailbridge.config_api.domain import audit
from mailbridge.config_api.domain.audit import AuditEntry, AuditKind, AuditQuery, Position
from mailbridge.config_api.ports import AuditLog
from mailbridge.shared.ids import new_id

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def at(agent_id: str, seconds: float, kind: AuditKind = AuditKind.SEND_SENT) -> AuditEntry:
    return audit.entry(
        agent_id, kind, occurred_at=AT + timedelta(seconds=seconds), actor="mail-worker",
        summary=f"at {seconds}", source=new_id("evt"), seconds=str(seconds),
    )  # fmt: skip


async def every_page(trail: AuditLog, query: AuditQuery) -> list[list[str]]:
    """The ``seconds`` of each page's entries, following the cursor to the end."""
    pages: list[list[str]] = []
    while True:
        page = await trail.page(query)
        pages.append([str(e.details["seconds"]) for e in page.entries])
        if page.next_cursor is None:
            return pages
        query = AuditQuery(query.agent_id, after=Position.of_cursor(page.next_cursor), limit=2)


class AuditLogContract:
    """Not collected itself: a subclass names the implementation (``make``) and how an agent of
    an org comes to be known to it (``known_agent``)."""

    async def make(self) -> AuditLog:
        raise NotImplementedError

    async def known_agent(self, org_id: str) -> str:
        raise NotImplementedError

    async def test_an_entry_is_recorded_once_however_often_it_comes(self) -> None:
        trail, agent_id = await self.make(), await self.known_agent("org-a")
        entry = at(agent_id, 1)
        assert await trail.record(entry) is True
        assert await trail.record(entry) is False
        page = await trail.page(AuditQuery(agent_id))
        assert [(e.kind, e.summary, e.actor) for e in page.entries] == [
            (entry.kind, entry.summary, entry.actor)
        ]
        assert page.entries[0].occurred_at == entry.occurred_at
        assert page.next_cursor is None

    async def test_an_unknown_agent_gets_no_entry(self) -> None:
        trail, agent_id = await self.make(), new_id("agent")
        assert await trail.record(at(agent_id, 1)) is False
        assert (await trail.page(AuditQuery(agent_id))).entries == []

    async def test_pages_are_newest_first_and_entries_recorded_meanwhile_never_shift_them(
        self,
    ) -> None:
        trail, agent_id = await self.make(), await self.known_agent("org-a")
        for seconds in (5, 1, 3, 2, 4):
            await trail.record(at(agent_id, seconds))
        await trail.record(at(agent_id, 3))  # the same time as another: the id orders them
        first = await trail.page(AuditQuery(agent_id, limit=2))
        for seconds in (9, 10, 0.5):  # newer ones, and one older than every page so far
            await trail.record(at(agent_id, seconds))
        assert first.next_cursor is not None
        rest = AuditQuery(agent_id, after=Position.of_cursor(first.next_cursor), limit=2)
        shown = [str(e.details["seconds"]) for e in first.entries]
        for page in await every_page(trail, rest):
            shown += page
        assert shown == ["5", "4", "3", "3", "2", "1", "0.5"]

    async def test_kinds_and_times_filter_and_another_org_sees_nothing(self) -> None:
        trail, agent_id = await self.make(), await self.known_agent("org-a")
        for seconds, kind in ((1, AuditKind.SEND_REQUESTED), (2, AuditKind.SEND_SENT),
                              (3, AuditKind.MAIL_RECEIVED), (4, AuditKind.SEND_SENT)):  # fmt: skip
            await trail.record(at(agent_id, seconds, kind))

        async def shown(**filters: object) -> list[str]:
            page = await trail.page(AuditQuery(agent_id, **filters))  # type: ignore[arg-type]
            return [str(e.details["seconds"]) for e in page.entries]

        sends = frozenset({AuditKind.SEND_SENT, AuditKind.SEND_REQUESTED})
        assert await shown(kinds=sends) == ["4", "2", "1"]
        window = {"since": AT + timedelta(seconds=2), "until": AT + timedelta(seconds=4)}
        assert await shown(**window) == ["3", "2"]
        assert await shown(org_id="org-a") == ["4", "3", "2", "1"]
        assert await shown(org_id="org-b") == []
