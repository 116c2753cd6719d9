"""What every ``ConfigRepository`` promises: versions, the outbox, and one decision at a time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from mailbridge.config_api.domain.email_config import AgentIn, StatusRecord, StoredConfig
from mailbridge.config_api.domain.poll_backoff import PollBackoff, PollState
from mailbridge.config_api.domain.versions import ANY_VERSION
from mailbridge.config_api.ports import ConfigRepository, StatusDecision
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import (
    AgentUpdated,
    EmailConfigSaved,
    Event,
    LastError,
    MailboxStatus,
    Provider,
    StatusChanged,
)
from tests.ports.outbox import Written, as_written

CONFIGURED = StatusRecord(status=MailboxStatus.CONFIGURED)
FAILING = StatusRecord(
    status=MailboxStatus.ERROR,
    last_error=LastError(
        code="auth_failed", message="The password was refused.", hint="Make a new app password.",
        at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), source="imap",
    ),
    last_test={"command_id": "cmd_1", "imap": {"ok": False}, "smtp": None},
)  # fmt: skip

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BACKING_OFF = StatusRecord(
    status=MailboxStatus.CONNECTED,
    poll=PollState(
        restarted_at=AT,
        backoff=PollBackoff(failures=2, failing_since=AT, retry_at=AT, last_failed_poll=AT),
    ),
)


def config_of(agent_id: str, *, email: str = "ada@example.com", version: int = 1) -> StoredConfig:
    return StoredConfig(
        agent_id=agent_id,
        provider=Provider.IMAP,
        email=email,
        settings={"preset": "custom", "imap": {"host": "imap.example.com", "port": 993}},
        sealed_secret="k1.c2VhbGVk",
        version=version,
    )


def saved(agent_id: str, version: int = 1) -> EmailConfigSaved:
    return EmailConfigSaved(agent_id=agent_id, provider=Provider.IMAP, version=version)


def changed(agent_id: str, status: MailboxStatus = MailboxStatus.CONFIGURED) -> StatusChanged:
    return StatusChanged(agent_id=agent_id, status=status, previous=MailboxStatus.NOT_CONNECTED)


def ids(written: list[Written]) -> list[str]:
    return [payload["event_id"] for _, payload in written]


Seen = list[tuple[StoredConfig | None, StatusRecord]]


def recording(seen: Seen) -> StatusDecision:
    """A decision that changes nothing and keeps what it was given."""

    def decide(config: StoredConfig | None, status: StatusRecord) -> None:
        seen.append((config, status))

    return decide


class ConfigRepositoryContract:
    """Not collected itself: a subclass names the implementation with ``make`` and says what its
    outbox holds with ``written``."""

    async def make(self) -> ConfigRepository:
        raise NotImplementedError

    async def written(self, agent_id: str) -> list[Written]:
        """The outbox entries about ``agent_id`` from the last ``make()``'s repository, in order."""
        raise NotImplementedError

    async def registered(
        self, org_id: str = "org-1", repo: ConfigRepository | None = None
    ) -> tuple[ConfigRepository, str]:
        """A repository (a new one unless given) with a new agent registered in ``org_id``."""
        repo, agent_id = repo or await self.make(), new_id("agent")
        await repo.upsert_agent(agent_id, AgentIn(org_id=org_id), [])
        return repo, agent_id

    # Agents ---------------------------------------------------------------------------------

    async def test_an_unknown_agent_loads_as_nothing_and_not_connected(self) -> None:
        repo, agent_id = await self.make(), new_id("agent")
        assert await repo.agent_org(agent_id) is None
        assert await repo.load(agent_id) == (None, StatusRecord())
        assert await repo.load_owned(agent_id) == (None, None, StatusRecord())

    async def test_a_registered_agent_loads_with_its_org_client_org_and_name(self) -> None:
        repo, agent_id = await self.make(), new_id("agent")
        agent = AgentIn(org_id="acme", client_org_id="acme-emea", name="Support")
        await repo.upsert_agent(agent_id, agent, [])
        assert await repo.agent_org(agent_id) == "acme"
        assert await repo.load_owned(agent_id) == (agent, None, StatusRecord())

    async def test_registering_again_replaces_the_org_client_org_and_name(self) -> None:
        repo, agent_id = await self.make(), new_id("agent")
        await repo.upsert_agent(agent_id, AgentIn(org_id="acme", client_org_id="emea"), [])
        await repo.upsert_agent(agent_id, AgentIn(org_id="other"), [])
        agent, _, _ = await repo.load_owned(agent_id)
        assert agent == AgentIn(org_id="other", client_org_id=None, name=None)

    async def test_registering_writes_its_events(self) -> None:
        repo, agent_id = await self.make(), new_id("agent")
        event = AgentUpdated(agent_id=agent_id, org_id="acme")
        await repo.upsert_agent(agent_id, AgentIn(org_id="acme"), [event])
        assert await self.written(agent_id) == [as_written(event)]

    async def test_each_agent_loads_its_own_org_config_and_status(self) -> None:
        repo, mine = await self.registered("org-a")
        _, theirs = await self.registered("org-b", repo)
        await repo.save(config_of(mine, email="mine@a.example"), CONFIGURED, [])
        await repo.save(config_of(theirs, email="theirs@b.example"), FAILING, [])
        await repo.save(config_of(theirs, email="theirs@b.example"), FAILING, [])
        assert await repo.load_owned(mine) == (
            AgentIn(org_id="org-a"), config_of(mine, email="mine@a.example"), CONFIGURED,
        )  # fmt: skip
        assert await repo.load_owned(theirs) == (
            AgentIn(org_id="org-b"), config_of(theirs, email="theirs@b.example", version=2),
            FAILING,
        )  # fmt: skip

    # Versions -------------------------------------------------------------------------------

    async def test_a_saved_config_loads_back_as_it_was_given_with_its_status(self) -> None:
        repo, agent_id = await self.registered()
        stored = await repo.save(config_of(agent_id), FAILING, [])
        assert stored == config_of(agent_id, version=1)
        assert await repo.load(agent_id) == (stored, FAILING)

    async def test_each_save_stores_the_next_version_whatever_the_config_said(self) -> None:
        repo, agent_id = await self.registered()
        first = await repo.save(config_of(agent_id, version=7), CONFIGURED, [])
        second = await repo.save(config_of(agent_id, version=1), CONFIGURED, [])
        assert (first.version, second.version) == (1, 2)
        config, _ = await repo.load(agent_id)
        assert config is not None and config.version == 2

    async def test_the_saved_event_carries_the_version_the_repository_stored(self) -> None:
        repo, agent_id = await self.registered()
        await repo.save(config_of(agent_id), CONFIGURED, [saved(agent_id, version=1)])
        raced = saved(agent_id, version=1)  # the handler read version 0, another save won
        await repo.save(config_of(agent_id), CONFIGURED, [raced])
        subject = raced.nats_subject()
        versions = [p["version"] for s, p in await self.written(agent_id) if s == subject]
        assert versions == [1, 2]

    async def test_the_expected_version_when_it_is_the_stored_one_is_accepted(self) -> None:
        repo, agent_id = await self.registered()
        await repo.save(config_of(agent_id), CONFIGURED, [])
        stored = await repo.save(config_of(agent_id), CONFIGURED, [], expected_version=1)
        assert stored.version == 2

    @pytest.mark.parametrize("expected", [0, 2, 5])
    async def test_a_stale_expected_version_is_refused_and_nothing_is_written(
        self, expected: int
    ) -> None:
        repo, agent_id = await self.registered()
        await repo.save(config_of(agent_id), CONFIGURED, [])
        before = await repo.load(agent_id), await self.written(agent_id)
        with pytest.raises(MailbridgeError) as refused:
            await repo.save(
                config_of(agent_id, email="new@example.com"), FAILING,
                [saved(agent_id, 2), changed(agent_id)], expected_version=expected,
            )  # fmt: skip
        assert refused.value.code is ErrorCode.PRECONDITION_FAILED
        assert (await repo.load(agent_id), await self.written(agent_id)) == before

    async def test_any_version_is_refused_without_a_config_and_accepted_with_one(self) -> None:
        repo, agent_id = await self.registered()
        with pytest.raises(MailbridgeError) as refused:
            await repo.save(
                config_of(agent_id), CONFIGURED, [changed(agent_id)], expected_version=ANY_VERSION
            )
        assert refused.value.code is ErrorCode.PRECONDITION_FAILED
        assert (await repo.load(agent_id), await self.written(agent_id)) == (
            (None, StatusRecord()), [],
        )  # fmt: skip
        await repo.save(config_of(agent_id), CONFIGURED, [])
        again = await repo.save(config_of(agent_id), CONFIGURED, [], expected_version=ANY_VERSION)
        assert again.version == 2

    async def test_of_two_saves_expecting_the_same_version_exactly_one_is_stored(self) -> None:
        repo, agent_id = await self.registered()
        await repo.save(config_of(agent_id), CONFIGURED, [])
        outcomes = await asyncio.gather(
            *(
                repo.save(config_of(agent_id, email=f"{n}@example.com"), CONFIGURED, [],
                          expected_version=1)
                for n in range(2)
            ),
            return_exceptions=True,
        )  # fmt: skip
        stored = [o for o in outcomes if isinstance(o, StoredConfig)]
        refused = [o for o in outcomes if isinstance(o, MailbridgeError)]
        assert len(stored) == 1 and stored[0].version == 2
        assert [r.code for r in refused] == [ErrorCode.PRECONDITION_FAILED]
        assert await repo.load(agent_id) == (stored[0], CONFIGURED)

    async def test_the_versions_of_two_agents_are_their_own(self) -> None:
        repo, mine = await self.registered()
        _, theirs = await self.registered(repo=repo)
        await repo.save(config_of(mine), CONFIGURED, [])
        await repo.save(config_of(mine), CONFIGURED, [])
        assert (await repo.save(config_of(theirs), CONFIGURED, [])).version == 1

    # The outbox -----------------------------------------------------------------------------

    async def test_a_save_writes_its_events_in_order(self) -> None:
        repo, agent_id = await self.registered()
        events: list[Event] = [saved(agent_id), changed(agent_id)]
        await repo.save(config_of(agent_id), CONFIGURED, events)
        assert await self.written(agent_id) == [as_written(e) for e in events]

    # Delete ---------------------------------------------------------------------------------

    async def test_delete_removes_the_config_and_its_status_but_not_the_agent(self) -> None:
        repo, agent_id = await self.registered("acme")
        await repo.save(config_of(agent_id), FAILING, [])
        event = changed(agent_id, MailboxStatus.NOT_CONNECTED)
        assert await repo.delete(agent_id, StatusRecord(), [event]) is True
        assert await repo.load_owned(agent_id) == (AgentIn(org_id="acme"), None, StatusRecord())
        assert ids(await self.written(agent_id)) == [event.event_id]

    async def test_deleting_nothing_answers_false_and_still_writes_its_events(self) -> None:
        repo, agent_id = await self.registered()
        event = changed(agent_id, MailboxStatus.NOT_CONNECTED)
        assert await repo.delete(agent_id, StatusRecord(), [event]) is False
        assert ids(await self.written(agent_id)) == [event.event_id]

    async def test_a_stale_expected_version_refuses_the_delete_and_keeps_everything(
        self,
    ) -> None:
        repo, agent_id = await self.registered()
        await repo.save(config_of(agent_id), CONFIGURED, [])
        await repo.save(config_of(agent_id), CONFIGURED, [])
        before = await repo.load(agent_id)
        with pytest.raises(MailbridgeError) as refused:
            await repo.delete(agent_id, StatusRecord(), [changed(agent_id)], expected_version=1)
        assert refused.value.code is ErrorCode.PRECONDITION_FAILED
        assert (await repo.load(agent_id), await self.written(agent_id)) == (before, [])
        assert await repo.delete(agent_id, StatusRecord(), [], expected_version=2) is True

    async def test_a_config_saved_after_a_delete_starts_again_at_version_one(self) -> None:
        repo, agent_id = await self.registered()
        await repo.save(config_of(agent_id), CONFIGURED, [])
        await repo.save(config_of(agent_id), CONFIGURED, [])
        await repo.delete(agent_id, StatusRecord(), [])
        assert (await repo.save(config_of(agent_id), CONFIGURED, [])).version == 1

    # update_status ----------------------------------------------------------------------------

    async def test_a_decision_is_given_the_current_config_and_status(self) -> None:
        repo, agent_id = await self.registered()
        stored = await repo.save(config_of(agent_id), FAILING, [])
        seen: Seen = []
        await repo.update_status(agent_id, recording(seen))
        assert seen == [(stored, FAILING)]

    async def test_a_decision_for_an_agent_without_a_config_is_given_none(self) -> None:
        repo, agent_id = await self.registered()
        seen: Seen = []
        await repo.update_status(agent_id, recording(seen))
        assert seen == [(None, StatusRecord())]

    async def test_a_decision_that_changes_nothing_writes_no_status_and_no_event(self) -> None:
        repo, agent_id = await self.registered()
        await repo.save(config_of(agent_id), CONFIGURED, [])
        await repo.update_status(agent_id, lambda config, status: None)
        assert (await repo.load(agent_id))[1] == CONFIGURED
        assert await self.written(agent_id) == []

    async def test_a_decision_that_changes_the_status_stores_it_with_its_events(self) -> None:
        repo, agent_id = await self.registered()
        await repo.save(config_of(agent_id), CONFIGURED, [])
        event = changed(agent_id, MailboxStatus.ERROR)
        await repo.update_status(agent_id, lambda config, status: (FAILING, [event]))
        assert (await repo.load(agent_id))[1] == FAILING
        assert await self.written(agent_id) == [as_written(event)]

    async def test_the_poll_backoff_is_kept_with_the_status_and_a_save_ends_it(self) -> None:
        repo, agent_id = await self.registered()
        await repo.save(config_of(agent_id), CONFIGURED, [])
        await repo.update_status(agent_id, lambda config, status: (BACKING_OFF, []))
        assert (await repo.load(agent_id))[1] == BACKING_OFF
        await repo.save(config_of(agent_id), CONFIGURED, [])
        assert (await repo.load(agent_id))[1].poll == PollState()

    async def test_concurrent_decisions_take_turns_so_none_acts_on_a_stale_status(self) -> None:
        repo, agent_id = await self.registered()
        await repo.save(config_of(agent_id), StatusRecord(last_test={"n": 0}), [])

        def one_more(
            config: StoredConfig | None, status: StatusRecord
        ) -> tuple[StatusRecord, list[Event]]:
            seen = status.last_test["n"] if status.last_test else 0
            return StatusRecord(last_test={"n": seen + 1}), []

        await asyncio.gather(*(repo.update_status(agent_id, one_more) for _ in range(10)))
        assert (await repo.load(agent_id))[1].last_test == {"n": 10}

    # fill_email -------------------------------------------------------------------------------

    async def oauth_config(self, email: str | None) -> tuple[ConfigRepository, str]:
        repo, agent_id = await self.registered()
        config = config_of(agent_id).model_copy(
            update={"provider": Provider.GOOGLE, "email": email, "settings": {}}
        )
        await repo.save(config, CONFIGURED, [])
        return repo, agent_id

    async def test_a_config_without_an_address_is_given_the_confirmed_one(self) -> None:
        repo, agent_id = await self.oauth_config(email=None)
        assert await repo.fill_email(agent_id, Provider.GOOGLE, "ada@gmail.example") is True
        config, status = await repo.load(agent_id)
        assert config is not None and (config.email, config.version) == ("ada@gmail.example", 1)
        assert status == CONFIGURED and await self.written(agent_id) == []

    async def test_an_address_already_saved_is_never_replaced(self) -> None:
        repo, agent_id = await self.oauth_config(email="saved@gmail.example")
        assert await repo.fill_email(agent_id, Provider.GOOGLE, "other@gmail.example") is False
        config, _ = await repo.load(agent_id)
        assert config is not None and config.email == "saved@gmail.example"

    async def test_a_config_of_another_provider_or_none_is_left_alone(self) -> None:
        repo, agent_id = await self.oauth_config(email=None)
        assert await repo.fill_email(agent_id, Provider.MICROSOFT, "ada@contoso.example") is False
        config, _ = await repo.load(agent_id)
        assert config is not None and config.email is None
        _, bare = await self.registered(repo=repo)
        assert await repo.fill_email(bare, Provider.GOOGLE, "ada@gmail.example") is False
