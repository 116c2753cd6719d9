"""A received message says whether its sender is new to the agent: one question per read to the
contact history policy keeps, and when that cannot be asked, the flag stays null (never a
guess either way, and the read is not held back for it)."""

from __future__ import annotations

from mailbridge.mail_worker.handlers import with_first_contact
from mailbridge.shared.messages import MessageReceived
from mailbridge.shared.messages.screening import Screening
from tests.fakes.mail_worker import FakeContactBook


def received(uid: int, sender: str | None, screened: bool = True) -> MessageReceived:
    return MessageReceived(
        agent_id="a1", uid=uid, uidvalidity=1, from_=sender,
        screening=Screening() if screened else None,
    )  # fmt: skip


async def test_a_known_sender_is_no_first_contact_and_a_stranger_is() -> None:
    book = FakeContactBook({"Ada <ada@example.com>"})
    events = [received(1, "Ada <ada@example.com>"), received(2, "eve@strangers.example")]

    marked = await with_first_contact("a1", events, book)

    assert [e.screening.first_contact for e in marked if e.screening] == [False, True]
    assert book.asked == [["Ada <ada@example.com>", "eve@strangers.example"]], "one question"


async def test_nothing_is_guessed_when_the_history_cannot_be_asked() -> None:
    marked = await with_first_contact("a1", [received(1, "eve@x.example")], FakeContactBook(None))
    assert marked[0].screening is not None and marked[0].screening.first_contact is None


async def test_a_message_without_a_sender_is_left_as_it_is_and_nothing_is_asked() -> None:
    book = FakeContactBook(set())
    events = [received(1, None), received(2, "x@y.example", screened=False)]
    assert await with_first_contact("a1", events, book) == events
    assert book.asked == []


async def test_the_rest_of_the_event_is_unchanged() -> None:
    event = received(7, "eve@x.example").model_copy(update={"subject": "hello", "text": "hi"})
    (marked,) = await with_first_contact("a1", [event], FakeContactBook(set()))
    assert marked.model_copy(update={"screening": event.screening}) == event
