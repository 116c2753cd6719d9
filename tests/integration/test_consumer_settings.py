"""The shared consumer follows the workers' settings: MAILBRIDGE_ACK_WAIT_SECONDS and
MAILBRIDGE_MAX_DELIVER reach the server even when an earlier replica created the consumer; and
its backlog, as the server counts it, reaches the worker's metrics.

A NATS server of this module's own: MAIL_CMD is a work-queue stream, and the session's server
already has the e2e workers' consumer on it, which this test must not touch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from prometheus_client import CollectorRegistry

from mailbridge.devstack.nats import EmbeddedNats
from mailbridge.mail_worker.entrypoints.backlog import ConsumerBacklog
from mailbridge.mail_worker.entrypoints.commands import apply_consumer_settings
from mailbridge.mail_worker.entrypoints.metrics import WorkerMetrics
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.messages import SendMessage
from mailbridge.shared.streams import MAIL_CMD, ensure_streams
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedNats(Path(tmp_path_factory.mktemp("consumer-nats")))
    yield server.start()
    server.stop()


@pytest.fixture
async def jetstream(own_nats: str) -> AsyncIterator[JetStreamContext]:
    client = await nats.connect(own_nats)
    js = client.jetstream()
    await ensure_streams(js, (MAIL_CMD,))
    yield js
    await client.close()


def settings(ack_wait: float, max_deliver: int = 5) -> MailWorkerSettings:
    return MailWorkerSettings(ack_wait_seconds=ack_wait, max_deliver=max_deliver)


async def test_a_replica_writes_its_ack_wait_to_the_consumer_an_earlier_one_created(
    jetstream: JetStreamContext,
) -> None:
    earlier = ConsumerConfig(
        durable_name="mail-worker", ack_policy=AckPolicy.EXPLICIT, ack_wait=60.0, max_deliver=5
    )
    await jetstream.add_consumer(MAIL_CMD.name, config=earlier)

    await apply_consumer_settings(jetstream, settings(ack_wait=7.0, max_deliver=3))

    applied = (await jetstream.consumer_info(MAIL_CMD.name, "mail-worker")).config
    assert (applied.ack_wait, applied.max_deliver) == (7.0, 3)
    await jetstream.delete_consumer(MAIL_CMD.name, "mail-worker")


async def test_without_a_consumer_nothing_is_created_ahead_of_the_subscriber(
    jetstream: JetStreamContext,
) -> None:
    await apply_consumer_settings(jetstream, settings(ack_wait=9.0))

    assert [c.name for c in await jetstream.consumers_info(MAIL_CMD.name)] == []


async def test_the_backlog_metrics_count_what_waits_and_what_is_out_unacknowledged(
    jetstream: JetStreamContext,
) -> None:
    config = ConsumerConfig(durable_name="mail-worker", ack_policy=AckPolicy.EXPLICIT)
    await jetstream.add_consumer(MAIL_CMD.name, config=config)
    for _ in range(5):
        command = SendMessage(agent_id="a1", to=["ada@example.com"])
        await jetstream.publish(command.nats_subject(), command.model_dump_json().encode())
    taken = await jetstream.pull_subscribe_bind("mail-worker", MAIL_CMD.name)
    await taken.fetch(2, timeout=5)  # not acknowledged
    registry = CollectorRegistry()
    backlog = ConsumerBacklog(settings(ack_wait=30.0), WorkerMetrics(registry))

    async def counted() -> list[float | None]:
        names = ("pending", "ack_pending")
        return [registry.get_sample_value(f"mailbridge_worker_consumer_{n}") for n in names]

    async def read() -> bool:
        return await counted() == [3, 2]  # 3 wait, 2 are out with a replica

    await backlog.start(jetstream)
    try:
        await eventually(read, what="the backlog read", timeout=10)
    finally:
        await backlog.stop()
    await jetstream.delete_consumer(MAIL_CMD.name, "mail-worker")
