"""What every policy ``OrgApps`` promises: an org's OAuth apps, replaced as one set, each change
written with its events."""

from __future__ import annotations

from dataclasses import replace

from mailbridge.policy.ports import OrgApps, StoredOrgApp
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import OrgChanged, Provider
from tests.ports.outbox import Written, as_written


def app(org_id: str, provider: Provider, client_id: str = "app-1") -> StoredOrgApp:
    tenant = "contoso.com" if provider is Provider.MICROSOFT else None
    return StoredOrgApp(org_id, provider, client_id, tenant, f"k1.sealed-{client_id}")


def as_given(apps: list[StoredOrgApp]) -> list[StoredOrgApp]:
    """The apps without ``updated_at``, which the store sets."""
    return [replace(a, updated_at=None) for a in apps]


class OrgAppsContract:
    """Not collected itself: a subclass names the implementation with ``make`` and says what its
    outbox holds with ``written``."""

    async def make(self) -> OrgApps:
        raise NotImplementedError

    async def written(self, org_id: str) -> list[Written]:
        """The outbox entries about ``org_id`` from the last ``make()``'s store, in order."""
        raise NotImplementedError

    async def test_an_org_without_apps_has_none(self) -> None:
        apps = await self.make()
        assert await apps.of_org(new_id("org")) == []

    async def test_replace_stores_the_apps_and_answers_them_as_stored(self) -> None:
        apps, org_id = await self.make(), new_id("org")
        given = [app(org_id, Provider.MICROSOFT), app(org_id, Provider.GOOGLE)]
        answered = await apps.replace(org_id, given, events=[])
        assert answered == await apps.of_org(org_id)
        assert as_given(answered) == [given[1], given[0]]  # in provider order: google first

    async def test_every_stored_app_says_when_it_was_stored(self) -> None:
        apps, org_id = await self.make(), new_id("org")
        answered = await apps.replace(org_id, [app(org_id, Provider.GOOGLE)], events=[])
        assert all(a.updated_at is not None for a in answered)
        assert all(a.updated_at is not None for a in await apps.of_org(org_id))

    async def test_a_provider_left_out_is_removed_and_one_given_again_is_updated(self) -> None:
        apps, org_id = await self.make(), new_id("org")
        both = [app(org_id, Provider.MICROSOFT), app(org_id, Provider.GOOGLE)]
        await apps.replace(org_id, both, events=[])
        renamed = app(org_id, Provider.MICROSOFT, client_id="app-2")
        assert as_given(await apps.replace(org_id, [renamed], events=[])) == [renamed]
        assert as_given(await apps.of_org(org_id)) == [renamed]

    async def test_replacing_with_no_apps_removes_them_all(self) -> None:
        apps, org_id = await self.make(), new_id("org")
        await apps.replace(org_id, [app(org_id, Provider.GOOGLE)], events=[])
        assert await apps.replace(org_id, [], events=[]) == []
        assert await apps.of_org(org_id) == []

    async def test_delete_answers_whether_the_org_had_apps(self) -> None:
        apps, org_id = await self.make(), new_id("org")
        both = [app(org_id, Provider.MICROSOFT), app(org_id, Provider.GOOGLE)]
        await apps.replace(org_id, both, events=[])
        assert await apps.delete(org_id, events=[]) is True
        assert await apps.of_org(org_id) == []
        assert await apps.delete(org_id, events=[]) is False

    async def test_each_org_has_its_own_apps(self) -> None:
        apps, mine, theirs = await self.make(), new_id("org"), new_id("org")
        await apps.replace(mine, [app(mine, Provider.GOOGLE, "mine")], events=[])
        await apps.replace(theirs, [app(theirs, Provider.GOOGLE, "theirs")], events=[])
        await apps.replace(theirs, [], events=[])
        assert as_given(await apps.of_org(mine)) == [app(mine, Provider.GOOGLE, "mine")]
        await apps.delete(mine, events=[])
        await apps.replace(theirs, [app(theirs, Provider.GOOGLE, "theirs")], events=[])
        assert as_given(await apps.of_org(theirs)) == [app(theirs, Provider.GOOGLE, "theirs")]

    # The events are written with the change ---------------------------------------------------

    async def test_every_replace_writes_its_events_even_one_that_removes_every_app(self) -> None:
        apps, org_id = await self.make(), new_id("org")
        stored, emptied = OrgChanged(org_id=org_id), OrgChanged(org_id=org_id)
        await apps.replace(org_id, [app(org_id, Provider.GOOGLE)], events=[stored])
        await apps.replace(org_id, [], events=[emptied])
        assert await self.written(org_id) == [as_written(stored), as_written(emptied)]

    async def test_a_delete_writes_its_events_only_when_the_org_had_apps(self) -> None:
        apps, org_id = await self.make(), new_id("org")
        assert await apps.delete(org_id, events=[OrgChanged(org_id=org_id)]) is False
        assert await self.written(org_id) == []
        await apps.replace(org_id, [app(org_id, Provider.GOOGLE)], events=[])
        removed = OrgChanged(org_id=org_id)
        assert await apps.delete(org_id, events=[removed]) is True
        assert await self.written(org_id) == [as_written(removed)]
