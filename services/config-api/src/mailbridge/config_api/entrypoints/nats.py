"""config-api's NATS entrypoints: the credentials rpc and the test-result subscribers."""

from __future__ import annotations

import logging

from faststream import AckPolicy as HandlerAck
from faststream.nats import AckPolicy, ConsumerConfig, DeliverPolicy, JStream, NatsBroker, PullSub

from mailbridge.config_api import handlers
from mailbridge.config_api.adapters.results import PendingTestResults
from mailbridge.config_api.ports import ConfigRepository
from mailbridge.shared.clock import Clock
from mailbridge.shared.crypto import Sealer
from mailbridge.shared.messages import ConnectionTested, GetCredentials
from mailbridge.shared.streams import MAIL_EVT

log = logging.getLogger(__name__)


def register(
    broker: NatsBroker,
    *,
    repo: ConfigRepository,
    sealer: Sealer,
    results: PendingTestResults,
    clock: Clock,
    queue: str,
) -> None:
    @broker.subscriber(GetCredentials.subscription(), queue=queue)
    async def credentials_get(request: GetCredentials) -> str:
        reply = await handlers.get_credentials(request.agent_id, repo=repo, sealer=sealer)
        return reply.model_dump_json()

    @broker.subscriber(ConnectionTested.subscription())
    async def test_result_for_waiting_request(result: ConnectionTested) -> None:
        results.deliver(result)

    @broker.subscriber(
        ConnectionTested.subscription(),
        stream=JStream(MAIL_EVT.name, declare=False),
        durable="config-api-connection-tested",
        pull_sub=PullSub(batch_size=10, timeout=5.0),
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW, ack_policy=AckPolicy.EXPLICIT),
        ack_policy=HandlerAck.NACK_ON_ERROR,
    )
    async def record_test_result(result: ConnectionTested) -> None:
        """Results that arrive after the HTTP request gave up, or for tests others started."""
        await handlers.record_test_result(result, repo=repo, clock=clock)
