"""Large content travels out of band: a command over the inline limit keeps only a reference, the
worker reads the same content back, and a reference that does not match its object is refused."""

from __future__ import annotations

import base64
import email.policy
from email import message_from_bytes

import pytest

from mailbridge.shared import content
from mailbridge.shared.errors import ErrorCode, PermanentError
from mailbridge.shared.messages import Attachment, MessageSent, SendMessage
from tests.factories import send
from tests.fakes.mail_worker import FakeSubmitter, MemoryContentStore, MemoryLedger

BIG = base64.b64encode(b"\x00\x01" * content.INLINE_LIMIT).decode()


def command(**fields: object) -> SendMessage:
    base: dict[str, object] = {"to": ["ada@x.example"], "subject": "Hi", "text": "hello"}
    return SendMessage(agent_id="a1", **(base | fields))


async def test_a_small_command_travels_as_it_is() -> None:
    store, small = MemoryContentStore(), command()
    assert await content.offloaded(small, store) == small
    assert store.objects == {}


async def test_a_large_command_carries_a_reference_and_reads_back_the_same() -> None:
    store = MemoryContentStore()
    large = command(
        html="<p>big</p>", attachments=[Attachment(filename="a.bin", content_base64=BIG)]
    )
    published = await content.offloaded(large, store)
    assert published.content_ref is not None
    assert (published.text, published.html, published.attachments) == (None, None, [])
    assert len(published.model_dump_json()) < 2048  # whatever the attachments weigh
    assert await content.inflated(published, store) == large.model_copy(
        update={"content_ref": published.content_ref}
    )


async def test_content_that_does_not_match_its_digest_is_refused() -> None:
    store = MemoryContentStore()
    published = await content.offloaded(
        command(attachments=[Attachment(filename="a.bin", content_base64=BIG)]), store
    )
    assert published.content_ref is not None
    store.objects[published.content_ref.name] += b" "
    with pytest.raises(PermanentError) as refused:
        await content.inflated(published, store)
    assert refused.value.code is ErrorCode.INVALID_INPUT


async def test_the_worker_sends_the_content_the_reference_names() -> None:
    store, submitter = MemoryContentStore(), FakeSubmitter()
    attachment = Attachment(filename="a.bin", content_base64=BIG)
    published = await content.offloaded(command(attachments=[attachment]), store)
    await send(published, submitter, MemoryLedger(), store=store)
    parsed = message_from_bytes(submitter.submitted[0].as_bytes(), policy=email.policy.default)
    [sent] = list(parsed.iter_attachments())
    assert sent.get_content() == base64.b64decode(BIG)


async def test_a_redelivered_sent_command_whose_content_is_gone_answers_from_the_ledger() -> None:
    store, ledger, submitter = MemoryContentStore(), MemoryLedger(), FakeSubmitter()
    published = await content.offloaded(
        command(attachments=[Attachment(filename="a.bin", content_base64=BIG)]), store
    )
    first = await send(published, submitter, ledger, store=store)
    store.objects.clear()  # settled: the worker deleted it
    again = await send(published, submitter, ledger, store=store)
    assert isinstance(again[0], MessageSent)
    assert again[0].message_id == first[0].message_id
    assert len(submitter.submitted) == 1
