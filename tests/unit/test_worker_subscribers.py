"""The mail-worker's subscribers in process, on FastStream's in-memory broker and a container of
fakes (the command consumer's ack table is in test_ack_table.py: the in-memory broker has no
JetStream delivery metadata)."""

from __future__ import annotations

from dataclasses import dataclass, field

from faststream.nats import NatsBroker, TestNatsBroker
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from mailbridge.mail_worker.container import Container
from mailbridge.mail_worker.entrypoints import config_events
from mailbridge.mail_worker.entrypoints.metrics import WorkerMetrics
from mailbridge.mail_worker.ports import InboxCounts, PollLimits
from mailbridge.shared.messages import AgentUpdated, Credentials, EmailConfigSaved
from tests.fakes.clock import FixedClock
from tests.fakes.config_api import RecordingPublisher
from tests.fakes.mail_worker import (
    FakeCredentials,
    FakeMailbox,
    FakePolicy,
    FakeSentFolder,
    FakeSubmission,
    FakeSubmitter,
    MemoryContentStore,
    MemoryCursorStore,
    MemoryLedger,
)

ACCOUNT = Credentials(provider="imap", email="agent@example.com", password=SecretStr("pw"))


@dataclass
class ForgettingCache:
    forgotten: list[str] = field(default_factory=list)

    def forget(self, agent_id: str) -> None:
        self.forgotten.append(agent_id)


def fake_container(cache: ForgettingCache) -> Container:
    credentials, mailbox, smtp = (
        FakeCredentials(ACCOUNT),
        FakeMailbox(InboxCounts(1, 0)),
        FakeSubmitter(),
    )
    return Container(
        publisher=RecordingPublisher(),
        credentials=credentials,
        fresh_credentials=credentials,
        credential_cache=cache,
        mailbox=mailbox,
        inbox=mailbox,  # type: ignore[arg-type]  # no poll in these tests
        sent_folder=FakeSentFolder(),
        sent_search=FakeSentFolder(),
        submission=FakeSubmission(),
        submitter=smtp,
        ledger=MemoryLedger(),
        cursors=MemoryCursorStore(),
        content=MemoryContentStore(),
        policy=FakePolicy(),
        limits=PollLimits(10, 10, 1_000_000),
        metrics=WorkerMetrics(CollectorRegistry()),
        clock=FixedClock(),
    )


async def test_a_saved_config_or_a_relinked_agent_drops_the_cached_credentials() -> None:
    broker, cache = NatsBroker(), ForgettingCache()
    config_events.register(broker, fake_container(cache))
    async with TestNatsBroker(broker) as test_broker:
        for event in (
            EmailConfigSaved(agent_id="a1", provider="imap", version=2),
            AgentUpdated(agent_id="a2", org_id="o"),
        ):
            await test_broker.publish(event.model_dump(mode="json"), event.nats_subject())
    assert cache.forgotten == ["a1", "a2"]
