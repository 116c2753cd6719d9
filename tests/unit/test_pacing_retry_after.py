"""A provider's Retry-After outlasts the usual backoff at the consumer edge, never shortens it:
the retried delivery, on whichever replica, comes no sooner than the provider said."""

from __future__ import annotations

import pytest

from mailbridge.mail_worker.entrypoints import commands
from mailbridge.shared.errors import ErrorCode, RetryableError
from tests.unit.test_ack_table import SETTINGS, SUBJECT, FakeDelivery, raising


@pytest.mark.parametrize(
    ("retry_after", "delivered", "delay"),
    [(None, 1, 1.0), (120.0, 1, 120.0), (2.0, 3, 15.0), (0.0, 1, 1.0)],
    ids=["none: backoff", "longer: retry-after", "shorter: backoff", "zero: backoff"],
)
async def test_a_retry_waits_the_longer_of_backoff_and_retry_after(
    retry_after: float | None, delivered: int, delay: float
) -> None:
    delivery = FakeDelivery(num_delivered=delivered)
    error = RetryableError(ErrorCode.PROVIDER_THROTTLED, retry_after_seconds=retry_after)

    answer = await commands._settle(delivery, raising(error), SUBJECT, SETTINGS)  # type: ignore[arg-type]

    assert (answer, delivery.calls) == ("retry", [("nack", delay)])


def test_the_constructor_without_retry_after_is_unchanged() -> None:
    error = RetryableError(ErrorCode.TIMEOUT, "slow")
    assert (error.detail, error.retry_after_seconds) == ("slow", None)
