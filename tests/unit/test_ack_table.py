"""The mail-worker's ack table, row by row, on a fake delivery: how each outcome of a command's
handler settles the JetStream message (see ``mail_worker/entrypoints/commands.py``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel

from mailbridge.mail_worker.entrypoints import commands
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.errors import ErrorCode, PermanentError, RetryableError

SUBJECT = "cmd.mail.message.send.v1.a1"


@dataclass
class FakeDelivery:
    """What ``_settle`` sees of a NATS message: its body, delivery count and the settle calls."""

    num_delivered: int = 1
    body: bytes = b"{}"
    calls: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def raw_message(self) -> SimpleNamespace:
        return SimpleNamespace(metadata=SimpleNamespace(num_delivered=self.num_delivered))

    async def ack(self) -> None:
        self.calls.append(("ack", None))

    async def nack(self, delay: float) -> None:
        self.calls.append(("nack", delay))

    async def reject(self) -> None:
        self.calls.append(("term", None))

    async def in_progress(self) -> None:
        self.calls.append(("in_progress", None))


def raising(error: BaseException | None, *, seconds: float = 0.0) -> commands.CommandHandler:
    async def handler(body: bytes, last: bool) -> None:
        await asyncio.sleep(seconds)
        if error is not None:
            raise error

    return handler


def undecodable() -> BaseException:
    class Shape(BaseModel):
        command_id: str

    try:
        Shape.model_validate({})
    except Exception as exc:  # pydantic's ValidationError, as a decode failure raises it
        return exc
    raise AssertionError("unreachable")


SETTINGS = MailWorkerSettings.model_construct(max_deliver=5, ack_wait_seconds=60.0)


@pytest.mark.parametrize(
    ("error", "delivered", "settled", "result"),
    [
        (None, 1, [("ack", None)], "ack"),
        (RetryableError(ErrorCode.TIMEOUT), 1, [("nack", 1.0)], "retry"),
        (RetryableError(ErrorCode.TIMEOUT), 3, [("nack", 15.0)], "retry"),
        (RetryableError(ErrorCode.TIMEOUT), 9, [("nack", 60.0)], "retry"),
        (PermanentError(ErrorCode.AUTH_FAILED), 1, [("term", None)], "term"),
        (undecodable(), 1, [("term", None)], "term"),
    ],
    ids=["done", "retry-first", "retry-third", "retry-capped", "permanent", "undecodable"],
)
async def test_each_outcome_settles_the_delivery_as_the_table_says(
    error: BaseException | None, delivered: int, settled: list[tuple[str, Any]], result: str
) -> None:
    delivery = FakeDelivery(num_delivered=delivered)
    answer = await commands._settle(delivery, raising(error), SUBJECT, SETTINGS)  # type: ignore[arg-type]
    assert (delivery.calls, answer) == (settled, result)


async def test_the_handler_hears_whether_this_is_the_last_delivery() -> None:
    heard: list[bool] = []

    async def handler(body: bytes, last: bool) -> None:
        heard.append(last)

    for delivered in (4, 5):
        await commands._settle(FakeDelivery(num_delivered=delivered), handler, SUBJECT, SETTINGS)  # type: ignore[arg-type]
    assert heard == [False, True]


async def test_a_long_command_tells_the_server_it_is_in_progress() -> None:
    settings = MailWorkerSettings.model_construct(max_deliver=5, ack_wait_seconds=0.06)
    delivery = FakeDelivery()
    await commands._settle(delivery, raising(None, seconds=0.1), SUBJECT, settings)  # type: ignore[arg-type]
    assert delivery.calls[0] == ("in_progress", None)
    assert delivery.calls[-1] == ("ack", None)
