"""NatsKvCursorStore: each mailbox's poll cursor in a NATS key-value bucket."""

from __future__ import annotations

from mailbridge.mail_worker.adapters.kv import JsonBucket
from mailbridge.mail_worker.domain.cursor import Cursor

BUCKET = "MAIL_POLL_CURSORS"


class NatsKvCursorStore:
    def __init__(self, bucket: JsonBucket) -> None:
        self._bucket = bucket

    async def get(self, agent_id: str) -> Cursor | None:
        raw = await self._bucket.get(agent_id)
        return Cursor(raw["uidvalidity"], raw["last_uid"]) if raw else None

    async def put(self, agent_id: str, cursor: Cursor) -> None:
        await self._bucket.put(
            agent_id, {"uidvalidity": cursor.uidvalidity, "last_uid": cursor.last_uid}
        )
