"""The mail-worker's subscribers in process, on FastStream's in-memory broker and a container of
fakes (the command consumer's ack table is in test_ack_table.py: the in-memory broker has no
JetStream delivery metadata)."""

from __future__ import annotations

from dataclasses import dataclass, field

from faststream.nats import NatsBroker, TestNatsBroker

from mailbridge.mail_worker.container import Container
from mailbridge.mail_worker.entrypoints import config_events
from mailbridge.shared.messages import AgentUpdated, EmailConfigSaved
from tests.fakes.mail_worker import container_of_fakes


@dataclass
class ForgettingCache:
    forgotten: list[str] = field(default_factory=list)

    def forget(self, agent_id: str) -> None:
        self.forgotten.append(agent_id)


def fake_container(cache: ForgettingCache) -> Container:
    return container_of_fakes(credential_cache=cache)


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
