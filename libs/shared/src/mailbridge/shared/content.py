"""A send's large content travels out of band, in a JetStream Object Store bucket.

A command is one NATS message, and NATS refuses a message over its max payload (1 MiB by default):
a send with megabytes of attachments, base64 in JSON, could never be published, and an outbox
relay that kept retrying it held up everything behind it. So a command whose JSON is over
``INLINE_LIMIT`` keeps only a ``ContentRef`` — object name, size and SHA-256 — and its bodies and
attachments go to the ``MAIL_CONTENT`` bucket as one ``MessageContent`` object. The mail-worker
reads it back (checking size and digest) right before building the message and deletes it once the
send is settled; objects nobody settled expire with the bucket's TTL, the commands' own max age.

Any service that publishes send commands may do the same: ``offloaded(command, store)``.
"""

from __future__ import annotations

import hashlib
import io
from typing import Protocol

from nats.js import JetStreamContext
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.errors import DigestMismatchError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from mailbridge.shared.errors import ErrorCode, PermanentError
from mailbridge.shared.messages import ContentRef, MessageContent, SendMessage
from mailbridge.shared.streams import MAIL_CMD

BUCKET = "MAIL_CONTENT"
INLINE_LIMIT = 256 * 1024  # bytes of command JSON; well under NATS's 1 MiB default max payload


class ContentStore(Protocol):
    async def put(self, name: str, data: bytes) -> ContentRef: ...

    async def get(self, ref: ContentRef) -> bytes: ...

    async def delete(self, ref: ContentRef) -> None: ...


async def offloaded(
    command: SendMessage, store: ContentStore, *, inline_limit: int = INLINE_LIMIT
) -> SendMessage:
    """The command as it may be published: unchanged when small (its JSON at most
    ``inline_limit`` bytes), else with a ``content_ref``."""
    if command.content_ref is not None or len(command.model_dump_json()) <= inline_limit:
        return command
    content = MessageContent(text=command.text, html=command.html, attachments=command.attachments)
    ref = await store.put(command.command_id, content.model_dump_json().encode())
    return command.model_copy(
        update={"text": None, "html": None, "attachments": [], "content_ref": ref}
    )


async def inflated(command: SendMessage, store: ContentStore) -> SendMessage:
    """The command with its content back in place, checked against the reference's digest."""
    if command.content_ref is None:
        return command
    data = await store.get(command.content_ref)
    content = MessageContent.model_validate_json(data)
    return command.model_copy(
        update={"text": content.text, "html": content.html, "attachments": content.attachments}
    )


def reference(name: str, data: bytes) -> ContentRef:
    return ContentRef(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def verified(ref: ContentRef, data: bytes) -> bytes:
    if (len(data), hashlib.sha256(data).hexdigest()) != (ref.size, ref.sha256):
        raise PermanentError(
            ErrorCode.INVALID_INPUT,
            f"The content of {ref.name!r} does not match its reference (size or SHA-256).",
        )
    return data


class NatsObjectContentStore:
    """The ``MAIL_CONTENT`` bucket. Built before the service connects; ``start`` creates or opens
    the bucket once it has (idempotent across services and replicas): a service ``Part``."""

    _store: ObjectStore

    async def start(self, js: JetStreamContext) -> None:
        config = ObjectStoreConfig(ttl=MAIL_CMD.max_age_seconds, storage=StorageType.FILE)
        self._store = await js.create_object_store(BUCKET, config=config)

    async def stop(self) -> None:
        return None

    async def put(self, name: str, data: bytes) -> ContentRef:
        await self._store.put(name, data)
        return reference(name, data)

    async def get(self, ref: ContentRef) -> bytes:
        if ref.bucket != BUCKET:
            raise PermanentError(ErrorCode.INVALID_INPUT, f"No content bucket {ref.bucket!r}.")
        received = io.BytesIO()  # chunk by chunk, not by concatenating bytes
        try:
            await self._store.get(ref.name, writeinto=received)
        except (ObjectNotFoundError, NotFoundError) as exc:
            raise PermanentError(
                ErrorCode.INVALID_INPUT, f"The content {ref.name!r} is gone (settled or expired)."
            ) from exc
        except DigestMismatchError as exc:
            raise PermanentError(ErrorCode.INVALID_INPUT, f"{ref.name!r} is corrupt.") from exc
        return verified(ref, received.getvalue())

    async def delete(self, ref: ContentRef) -> None:
        """Once the send is settled; already gone is fine (a redelivery settled it too)."""
        try:
            await self._store.delete(ref.name)
        except (ObjectNotFoundError, NotFoundError):
            return
