"""The pieces every NATS service is made of: telemetry, a broker, the health rpc, readiness.

``mailbridge.shared.service`` puts them together into one start and stop for every service.
"""

from __future__ import annotations

import logging
from typing import Any

from faststream import AckPolicy as HandlerAck
from faststream.nats import AckPolicy, ConsumerConfig, DeliverPolicy, JStream, NatsBroker, PullSub
from faststream.nats.subscriber.usecases import LogicSubscriber
from opentelemetry.sdk.trace import TracerProvider

from mailbridge.shared.health import ReadinessCheck
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import CheckHealth, HealthReply
from mailbridge.shared.outage_middleware import WaitingOutDatabaseOutages
from mailbridge.shared.settings import ServiceSettings
from mailbridge.shared.streams import StreamDefinition
from mailbridge.shared.telemetry import (
    SpanExport,
    build_tracer_provider,
    configure_logging,
    nats_middleware,
)

log = logging.getLogger(__name__)

INSTANCE_ID = new_id("inst")


def setup_telemetry(service: str, settings: ServiceSettings) -> TracerProvider:
    configure_logging(service, settings.log_level)
    export = SpanExport(
        settings.otlp_endpoint, settings.otlp_export_delay_seconds, settings.otel_console
    )
    return build_tracer_provider(service, INSTANCE_ID, export)


def build_broker(settings: ServiceSettings, provider: TracerProvider) -> NatsBroker:
    """A broker on every server ``MAILBRIDGE_NATS_URL`` lists (tried in random order, so replicas
    spread over a cluster). A lost connection moves to another server, trying them forever one
    second apart: a service never gives up on NATS. A server that stops answering without
    closing (a host gone) is found dead after two unanswered pings, within ~30 s, not nats-py's
    default four minutes. On stop, subscribers drain their handlers in flight for up to
    ``MAILBRIDGE_DRAIN_SECONDS`` (faststream's ``graceful_timeout``), then cancel them. A
    JetStream delivery that met the database away comes back after a delay, not at once."""
    return NatsBroker(
        settings.nats_servers,
        graceful_timeout=settings.drain_seconds or None,
        middlewares=(nats_middleware(provider), WaitingOutDatabaseOutages),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        ping_interval=10,
        max_outstanding_pings=2,
        logger=logging.getLogger("mailbridge.broker"),
        log_level=logging.DEBUG,  # one line per message is too much at INFO
    )


def serve_health_rpc(broker: NatsBroker, service: str, readiness: ReadinessCheck) -> None:
    """Answer ``rpc.health.check.v1.{service}`` from any replica (queue group per service)."""

    @broker.subscriber(CheckHealth.subject_for(service), queue=f"{service}-health")
    async def check_health() -> str:
        checks = await readiness()
        reply = HealthReply(
            service=service, instance=INSTANCE_ID, ready=all(checks.values()), checks=checks
        )
        return reply.model_dump_json()


async def nats_ready(broker: NatsBroker) -> dict[str, bool]:
    connection = broker.connection if broker.running else None
    return {"nats": bool(connection is not None and connection.is_connected)}


def durable_consumer(
    broker: NatsBroker, subject: str, stream: StreamDefinition, durable: str
) -> LogicSubscriber[Any]:
    """A durable pull consumer of ``subject`` (an event kind's ``subscription()``, or wider),
    new events only, acked once the handler succeeded and redelivered when it raised: what a
    service's event consumers are made of."""
    return broker.subscriber(
        subject,
        stream=JStream(stream.name, declare=False),
        durable=durable,
        pull_sub=PullSub(batch_size=10, timeout=5.0),
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW, ack_policy=AckPolicy.EXPLICIT),
        ack_policy=HandlerAck.NACK_ON_ERROR,
    )
