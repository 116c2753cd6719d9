"""NatsKvCursorStore: each mailbox's poll cursor in a NATS key-value bucket.

An IMAP mailbox keeps ``{uidvalidity, last_uid}``; an API mailbox ``{"api": {position, newest,
seen}}`` under the same key, so a mailbox that changes provider starts afresh.
"""

from __future__ import annotations

from mailbridge.mail_worker.adapters.kv import JsonBucket
from mailbridge.mail_worker.domain.cursor import ApiCursor, Cursor

BUCKET = "MAIL_POLL_CURSORS"


class NatsKvCursorStore:
    def __init__(self, bucket: JsonBucket) -> None:
        self._bucket = bucket

    async def get(self, agent_id: str) -> Cursor | None:
        raw = await self._bucket.get(agent_id)
        return Cursor(raw["uidvalidity"], raw["last_uid"]) if raw and "uidvalidity" in raw else None

    async def put(self, agent_id: str, cursor: Cursor | ApiCursor) -> None:
        if isinstance(cursor, ApiCursor):
            api = {"position": cursor.position, "newest": cursor.newest, "seen": list(cursor.seen)}
            await self._bucket.put(agent_id, {"api": api})
            return
        await self._bucket.put(
            agent_id, {"uidvalidity": cursor.uidvalidity, "last_uid": cursor.last_uid}
        )

    async def get_api(self, agent_id: str) -> ApiCursor | None:
        raw = await self._bucket.get(agent_id)
        api = raw.get("api") if raw else None
        if not isinstance(api, dict):
            return None
        return ApiCursor(str(api["position"]), float(api["newest"]), tuple(api["seen"]))
