"""What every ``ContentStore`` promises: content reads back exactly, or is refused as invalid."""

from __future__ import annotations

import hashlib
import os

import pytest

from mailbridge.shared.content import BUCKET, ContentStore
from mailbridge.shared.errors import ErrorCode, PermanentError
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import ContentRef

DATA = b'{"text": "hello", "attachments": []}'
LARGE = os.urandom(3 * 128 * 1024 + 17)  # several of NATS's object chunks, and then some


class ContentStoreContract:
    """Not collected itself: a subclass names the implementation with ``make``."""

    async def make(self) -> ContentStore:
        raise NotImplementedError

    async def refused(self, store: ContentStore, ref: ContentRef) -> PermanentError:
        with pytest.raises(PermanentError) as refusal:
            await store.get(ref)
        assert refusal.value.code is ErrorCode.INVALID_INPUT
        return refusal.value

    async def test_a_put_answers_the_reference_of_what_it_stored(self) -> None:
        store, name = await self.make(), new_id("cmd")
        ref = await store.put(name, DATA)
        assert ref == ContentRef(
            bucket=BUCKET, name=name, size=len(DATA), sha256=hashlib.sha256(DATA).hexdigest()
        )

    @pytest.mark.parametrize("data", [DATA, LARGE, b""], ids=["small", "chunked", "empty"])
    async def test_content_reads_back_exactly_as_it_was_put(self, data: bytes) -> None:
        store = await self.make()
        ref = await store.put(new_id("cmd"), data)
        assert await store.get(ref) == data

    async def test_a_second_put_under_one_name_replaces_the_first(self) -> None:
        store, name = await self.make(), new_id("cmd")
        await store.put(name, DATA)
        ref = await store.put(name, LARGE)
        assert await store.get(ref) == LARGE

    async def test_content_never_put_is_refused_as_invalid(self) -> None:
        store = await self.make()
        await self.refused(store, ContentRef(name=new_id("cmd"), size=1, sha256="0" * 64))

    async def test_deleted_content_is_refused_as_invalid(self) -> None:
        store = await self.make()
        ref = await store.put(new_id("cmd"), DATA)
        await store.delete(ref)
        await self.refused(store, ref)

    async def test_deleting_what_is_already_gone_is_fine(self) -> None:
        store = await self.make()
        ref = await store.put(new_id("cmd"), DATA)
        await store.delete(ref)
        await store.delete(ref)  # a redelivery settled the send too
        await store.delete(ContentRef(name=new_id("cmd"), size=0, sha256="0" * 64))

    @pytest.mark.parametrize("field", ["size", "sha256"])
    async def test_a_reference_that_does_not_match_its_content_is_refused(self, field: str) -> None:
        store = await self.make()
        ref = await store.put(new_id("cmd"), DATA)
        wrong = {"size": ref.size + 1, "sha256": hashlib.sha256(b"other").hexdigest()}[field]
        await self.refused(store, ref.model_copy(update={field: wrong}))

    async def test_a_reference_to_another_bucket_is_refused(self) -> None:
        store = await self.make()
        ref = await store.put(new_id("cmd"), DATA)
        await self.refused(store, ref.model_copy(update={"bucket": "OTHER_CONTENT"}))
