"""MAILBRIDGE_STREAM_REPLICAS on a real three-node cluster: what a service starts with is what
every stream and bucket gets, including ones an earlier deployment made with fewer copies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, ObjectStoreConfig

from mailbridge.devstack.nats_cluster import NatsCluster
from mailbridge.shared.streams import ALL_STREAMS, ReplicatedJetStream, ensure_streams


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    with NatsCluster(Path(tmp_path_factory.mktemp("replicas"))) as running:
        yield running


@pytest.fixture
async def client(cluster: NatsCluster) -> AsyncIterator[Client]:
    connected = await nats.connect(cluster.urls.split(","))
    yield connected
    await connected.close()


async def replicas_of(client: Client, stream: str) -> tuple[int, int]:
    """(configured copies, copies the cluster holds: the leader and its followers)."""
    info = await client.jetstream().stream_info(stream)
    assert info.cluster is not None and info.cluster.leader is not None
    return int(info.config.num_replicas or 1), 1 + len(info.cluster.replicas or [])


async def test_every_stream_and_bucket_a_service_makes_has_the_configured_copies(
    client: Client,
) -> None:
    js = ReplicatedJetStream(client, 3)
    await ensure_streams(js, ALL_STREAMS)
    kv = await js.create_key_value(KeyValueConfig(bucket="REPLICAS_NEW", history=1))
    await js.create_object_store("REPLICAS_OBJ", config=ObjectStoreConfig())
    await kv.put("written", b"at once")  # the new bucket takes writes when it is handed over

    made = [*(s.name for s in ALL_STREAMS), "KV_REPLICAS_NEW", "OBJ_REPLICAS_OBJ"]
    assert {name: await replicas_of(client, name) for name in made} == dict.fromkeys(made, (3, 3))


async def test_a_bucket_made_with_one_copy_is_moved_to_three_and_keeps_its_data(
    client: Client,
) -> None:
    old = await client.jetstream().create_key_value(KeyValueConfig(bucket="REPLICAS_OLD"))
    await old.put("cursor", b"42")
    assert await replicas_of(client, "KV_REPLICAS_OLD") == (1, 1)

    bucket = await ReplicatedJetStream(client, 3).create_key_value(
        KeyValueConfig(bucket="REPLICAS_OLD")
    )

    assert await replicas_of(client, "KV_REPLICAS_OLD") == (3, 3)
    assert (await bucket.get("cursor")).value == b"42"
    await bucket.put("cursor", b"43")  # writable right after the move


async def test_a_bucket_that_differs_in_more_than_its_copies_is_still_refused(
    client: Client,
) -> None:
    await client.jetstream().create_key_value(KeyValueConfig(bucket="REPLICAS_TTL", ttl=60))

    with pytest.raises(nats.js.errors.BadRequestError):
        await ReplicatedJetStream(client, 3).create_key_value(
            KeyValueConfig(bucket="REPLICAS_TTL", ttl=120)
        )
