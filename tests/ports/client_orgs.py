"""What every policy ``ClientOrgs`` promises: client orgs, each within its org, each change written
with its events."""

from __future__ import annotations

from dataclasses import replace

from mailbridge.policy.ports import ClientOrgs, StoredClientOrg
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import ClientOrgChanged, Restrictions
from tests.ports.outbox import Written, as_written

LIMITED = Restrictions(allowed_recipients=["acme.com", "*.partner.org"], max_per_hour=10)


def client_org(org_id: str, client_org_id: str, name: str = "Acme") -> StoredClientOrg:
    return StoredClientOrg(org_id, client_org_id, name, "acme.com", LIMITED)


def as_given(found: StoredClientOrg | None) -> StoredClientOrg | None:
    """The client org without ``updated_at``, which the store sets."""
    return replace(found, updated_at=None) if found is not None else None


class ClientOrgsContract:
    """Not collected itself: a subclass names the implementation with ``make`` and says what its
    outbox holds with ``written``."""

    async def make(self) -> ClientOrgs:
        raise NotImplementedError

    async def written(self, org_id: str) -> list[Written]:
        """The outbox entries about ``org_id`` from the last ``make()``'s store, in order."""
        raise NotImplementedError

    async def test_a_client_org_never_put_is_none(self) -> None:
        client_orgs = await self.make()
        assert await client_orgs.get(new_id("org"), new_id("client")) is None

    async def test_a_put_answers_the_client_org_as_stored_and_a_get_reads_it_back(self) -> None:
        client_orgs, org_id, client_org_id = await self.make(), new_id("org"), new_id("client")
        answered = await client_orgs.put(client_org(org_id, client_org_id), events=[])
        assert as_given(answered) == client_org(org_id, client_org_id)
        assert answered.updated_at is not None
        assert await client_orgs.get(org_id, client_org_id) == answered

    async def test_a_second_put_replaces_the_name_domain_and_restrictions(self) -> None:
        client_orgs, org_id, client_org_id = await self.make(), new_id("org"), new_id("client")
        await client_orgs.put(client_org(org_id, client_org_id), events=[])
        unrestricted = StoredClientOrg(org_id, client_org_id, "Acme 2", None, Restrictions())
        await client_orgs.put(unrestricted, events=[])
        assert as_given(await client_orgs.get(org_id, client_org_id)) == unrestricted

    async def test_one_client_org_id_in_two_orgs_is_two_client_orgs(self) -> None:
        client_orgs, mine, theirs, shared = await self.make(), new_id("org"), new_id("org"), "acme"
        await client_orgs.put(client_org(mine, shared, "Mine"), events=[])
        await client_orgs.put(client_org(theirs, shared, "Theirs"), events=[])
        assert as_given(await client_orgs.get(mine, shared)) == client_org(mine, shared, "Mine")
        assert await client_orgs.delete(theirs, shared, events=[]) is True
        assert await client_orgs.get(theirs, shared) is None
        assert await client_orgs.get(mine, shared) is not None

    async def test_delete_answers_whether_there_was_one(self) -> None:
        client_orgs, org_id, client_org_id = await self.make(), new_id("org"), new_id("client")
        await client_orgs.put(client_org(org_id, client_org_id), events=[])
        assert await client_orgs.delete(org_id, client_org_id, events=[]) is True
        assert await client_orgs.get(org_id, client_org_id) is None
        assert await client_orgs.delete(org_id, client_org_id, events=[]) is False

    # The events are written with the change ---------------------------------------------------

    async def test_every_put_writes_its_events(self) -> None:
        client_orgs, org_id, client_org_id = await self.make(), new_id("org"), new_id("client")
        created = ClientOrgChanged(org_id=org_id, client_org_id=client_org_id)
        updated = ClientOrgChanged(org_id=org_id, client_org_id=client_org_id)
        await client_orgs.put(client_org(org_id, client_org_id), events=[created])
        await client_orgs.put(client_org(org_id, client_org_id, "Acme 2"), events=[updated])
        assert await self.written(org_id) == [as_written(created), as_written(updated)]

    async def test_a_delete_writes_its_events_only_when_there_was_one(self) -> None:
        client_orgs, org_id, client_org_id = await self.make(), new_id("org"), new_id("client")
        missed = ClientOrgChanged(org_id=org_id, client_org_id=client_org_id)
        assert await client_orgs.delete(org_id, client_org_id, events=[missed]) is False
        assert await self.written(org_id) == []
        await client_orgs.put(client_org(org_id, client_org_id), events=[])
        removed = ClientOrgChanged(org_id=org_id, client_org_id=client_org_id)
        assert await client_orgs.delete(org_id, client_org_id, events=[removed]) is True
        assert await self.written(org_id) == [as_written(removed)]
