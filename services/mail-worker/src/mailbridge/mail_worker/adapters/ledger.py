"""NatsKvSendLedger: the idempotency ledger of sends, in a NATS key-value bucket.

Keys are command ids; values are small JSON entries. The bucket keeps entries for a week, longer
than any redelivery of a command can happen.
"""

from __future__ import annotations

from mailbridge.mail_worker.adapters.kv import JsonBucket
from mailbridge.mail_worker.ports import LedgerEntry, LedgerState

BUCKET = "MAIL_SEND_LEDGER"
WEEK_SECONDS = 7 * 24 * 3600.0


class NatsKvSendLedger:
    def __init__(self, bucket: JsonBucket) -> None:
        self._bucket = bucket

    async def get(self, command_id: str) -> LedgerEntry | None:
        raw = await self._bucket.get(command_id)
        if raw is None:
            return None
        return LedgerEntry(LedgerState(raw["state"]), raw["message_id"], tuple(raw["accepted"]))

    async def claim(self, command_id: str, entry: LedgerEntry) -> bool:
        return await self._bucket.create(command_id, _document(entry))

    async def put(self, command_id: str, entry: LedgerEntry) -> None:
        await self._bucket.put(command_id, _document(entry))

    async def release(self, command_id: str) -> None:
        await self._bucket.delete(command_id)


def _document(entry: LedgerEntry) -> dict[str, object]:
    value = {"state": entry.state.value, "message_id": entry.message_id}
    return {**value, "accepted": list(entry.accepted)}
