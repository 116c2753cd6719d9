"""Fakes of the mail-worker's ports (proved against their adapters in tests/ports/)."""

from __future__ import annotations

from mailbridge.mail_worker.domain.cursor import Cursor
from mailbridge.mail_worker.domain.mime import Outgoing
from mailbridge.mail_worker.ports import DataStarting, InboxCounts, LedgerEntry
from mailbridge.shared import content
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError, PermanentError
from mailbridge.shared.messages import (
    AuthorizeSend,
    ContentRef,
    Credentials,
    SendAuthorization,
)


class FakeCredentials:
    def __init__(self, credentials: Credentials | MailbridgeError) -> None:
        self.credentials = credentials

    async def get(self, agent_id: str) -> Credentials:
        if isinstance(self.credentials, MailbridgeError):
            raise self.credentials
        return self.credentials


class FakeMailbox:
    def __init__(self, counts: InboxCounts | MailbridgeError) -> None:
        self.counts = counts

    async def inbox_counts(self, credentials: Credentials) -> InboxCounts:
        if isinstance(self.counts, MailbridgeError):
            raise self.counts
        return self.counts


class FakeSubmission:
    def __init__(self, error: MailbridgeError | None = None) -> None:
        self.error = error
        self.checked: list[str] = []

    async def check_auth(self, credentials: Credentials) -> None:
        self.checked.append(credentials.email)
        if self.error is not None:
            raise self.error


class MemoryLedger:
    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}

    async def get(self, command_id: str) -> LedgerEntry | None:
        return self.entries.get(command_id)

    async def claim(self, command_id: str, entry: LedgerEntry) -> bool:
        if command_id in self.entries:
            return False
        self.entries[command_id] = entry
        return True

    async def put(self, command_id: str, entry: LedgerEntry) -> None:
        self.entries[command_id] = entry


class MemoryCursorStore:
    def __init__(self) -> None:
        self.cursors: dict[str, Cursor] = {}

    async def get(self, agent_id: str) -> Cursor | None:
        return self.cursors.get(agent_id)

    async def put(self, agent_id: str, cursor: Cursor) -> None:
        self.cursors[agent_id] = cursor


class FakeSubmitter:
    """Accepts every recipient, or fails before or after the data starts."""

    def __init__(
        self, *, before_data: Exception | None = None, after_data: Exception | None = None
    ) -> None:
        self.before_data, self.after_data = before_data, after_data
        self.submitted: list[Outgoing] = []

    async def submit(
        self, credentials: Credentials, outgoing: Outgoing, data_starting: DataStarting
    ) -> list[str]:
        if self.before_data is not None:
            raise self.before_data
        await data_starting()
        if self.after_data is not None:
            raise self.after_data
        self.submitted.append(outgoing)
        return outgoing.recipients


class FakeSentFolder:
    def __init__(self, error: MailbridgeError | None = None) -> None:
        self.copies: list[bytes] = []
        self.error = error

    async def append(self, credentials: Credentials, message: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.copies.append(message)


class FakePolicy:
    """Allows every send, or refuses each with ``refusal``; keeps what it was asked."""

    def __init__(self, refusal: ErrorInfo | None = None) -> None:
        self.refusal = refusal
        self.asked: list[AuthorizeSend] = []

    async def authorize(self, request: AuthorizeSend) -> SendAuthorization:
        self.asked.append(request)
        if self.refusal is not None:
            return SendAuthorization(allowed=False, error=self.refusal)
        return SendAuthorization(allowed=True, reservation_id=f"r-{request.command_id}")


class MemoryContentStore:
    """The out-of-band content bucket, in memory; checks digests as the real one does."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def put(self, name: str, data: bytes) -> ContentRef:
        self.objects[name] = data
        return content.reference(name, data)

    async def get(self, ref: ContentRef) -> bytes:
        if ref.bucket != content.BUCKET:
            raise PermanentError(ErrorCode.INVALID_INPUT, f"No content bucket {ref.bucket!r}.")
        if ref.name not in self.objects:
            raise PermanentError(ErrorCode.INVALID_INPUT, f"The content {ref.name!r} is gone.")
        return content.verified(ref, self.objects[ref.name])

    async def delete(self, ref: ContentRef) -> None:
        self.objects.pop(ref.name, None)
