"""NatsKvCursorStore: each mailbox's poll cursor in a NATS key-value bucket."""

from __future__ import annotations

import json

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from mailbridge.mail_worker.domain.cursor import Cursor

BUCKET = "MAIL_POLL_CURSORS"


async def open_cursor_bucket(js: JetStreamContext) -> KeyValue:
    return await js.create_key_value(KeyValueConfig(bucket=BUCKET, history=1))


class NatsKvCursorStore:
    def __init__(self, bucket: KeyValue) -> None:
        self._bucket = bucket

    async def get(self, agent_id: str) -> Cursor | None:
        try:
            found = await self._bucket.get(agent_id)
        except KeyNotFoundError:
            return None
        if found.value is None:
            return None
        raw = json.loads(found.value)
        return Cursor(raw["uidvalidity"], raw["last_uid"])

    async def put(self, agent_id: str, cursor: Cursor) -> None:
        value = {"uidvalidity": cursor.uidvalidity, "last_uid": cursor.last_uid}
        await self._bucket.put(agent_id, json.dumps(value).encode())
