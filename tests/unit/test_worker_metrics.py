"""The mail-worker's operator metrics move when the thing they count happens: a send's latency
from its command's issue to the mail server's answer, by outcome."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from mailbridge.mail_worker.entrypoints import commands
from mailbridge.mail_worker.entrypoints.metrics import WorkerMetrics
from mailbridge.mail_worker.ports import OutcomeUnknownError
from mailbridge.shared.errors import ErrorCode, PermanentError
from mailbridge.shared.messages import SendMessage
from tests.fakes.clock import FixedClock
from tests.fakes.mail_worker import FakeSubmitter, container_of_fakes

WAITED = timedelta(seconds=42)


def sends(registry: CollectorRegistry, outcome: str) -> tuple[float, float]:
    """(how many sends ended so, their seconds summed)."""
    labels = {"outcome": outcome}
    count = registry.get_sample_value("mailbridge_worker_send_seconds_count", labels)
    total = registry.get_sample_value("mailbridge_worker_send_seconds_sum", labels)
    return count or 0.0, total or 0.0


async def send_issued_before(submitter: FakeSubmitter) -> CollectorRegistry:
    """A send command issued ``WAITED`` before the worker's clock, run to its end."""
    registry, clock = CollectorRegistry(), FixedClock()
    c = container_of_fakes(submitter=submitter, clock=clock, metrics=WorkerMetrics(registry))
    command = SendMessage(agent_id="a1", to=["ada@example.com"], text="x",
                          issued_at=clock.now() - WAITED)  # fmt: skip
    with contextlib.suppress(PermanentError):  # a failed send is termed after its failure event
        await commands.run_send(c, command.model_dump_json().encode(), True)
    return registry


async def test_a_sent_message_counts_its_wait_from_the_commands_issue() -> None:
    registry = await send_issued_before(FakeSubmitter())
    assert sends(registry, "sent") == (1.0, WAITED.total_seconds())
    assert sends(registry, "unknown") == (0.0, 0.0)


@pytest.mark.parametrize(
    ("failure", "outcome"),
    [
        (OutcomeUnknownError("cut during DATA"), "unknown"),
        (PermanentError(ErrorCode.INVALID_INPUT, "550 no such user"), "failed"),
    ],
)
async def test_a_send_that_did_not_go_counts_under_its_outcome(
    failure: Exception, outcome: str
) -> None:
    registry = await send_issued_before(FakeSubmitter(after_data=failure))
    assert sends(registry, outcome) == (1.0, WAITED.total_seconds())
    assert sends(registry, "sent") == (0.0, 0.0)
