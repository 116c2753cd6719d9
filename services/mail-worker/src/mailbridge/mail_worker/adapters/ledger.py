"""NatsKvSendLedger: the idempotency ledger of sends, in a NATS key-value bucket.

Keys are command ids; values are small JSON entries. The bucket keeps entries for a week, longer
than any redelivery of a command can happen.
"""

from __future__ import annotations

import json

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from mailbridge.mail_worker.ports import LedgerEntry, LedgerState

BUCKET = "MAIL_SEND_LEDGER"
WEEK_SECONDS = 7 * 24 * 3600.0


async def open_bucket(js: JetStreamContext) -> KeyValue:
    return await js.create_key_value(KeyValueConfig(bucket=BUCKET, history=1, ttl=WEEK_SECONDS))


class NatsKvSendLedger:
    def __init__(self, bucket: KeyValue) -> None:
        self._bucket = bucket

    async def get(self, command_id: str) -> LedgerEntry | None:
        try:
            found = await self._bucket.get(command_id)
        except KeyNotFoundError:
            return None
        if found.value is None:
            return None
        raw = json.loads(found.value)
        return LedgerEntry(LedgerState(raw["state"]), raw["message_id"], tuple(raw["accepted"]))

    async def put(self, command_id: str, entry: LedgerEntry) -> None:
        value = {"state": entry.state.value, "message_id": entry.message_id}
        await self._bucket.put(
            command_id, json.dumps({**value, "accepted": list(entry.accepted)}).encode()
        )
