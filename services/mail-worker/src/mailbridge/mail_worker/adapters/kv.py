"""JsonBucket: small JSON documents in a NATS key-value bucket, shared by every replica.

Built before the worker connects and opened by ``start`` once it has (a service ``Part``), so the
ledger and the cursors that use it are whole from the start: no field waits to be filled in.
"""

from __future__ import annotations

import json
import string
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue


async def open_bucket(
    js: JetStreamContext, name: str, ttl_seconds: float | None = None
) -> KeyValue:
    """Create the bucket, or open it as it is (idempotent across replicas)."""
    return await js.create_key_value(KeyValueConfig(bucket=name, history=1, ttl=ttl_seconds))


class JsonBucket:
    _bucket: KeyValue

    def __init__(self, name: str, ttl_seconds: float | None = None) -> None:
        self.name, self._ttl = name, ttl_seconds

    async def start(self, js: JetStreamContext) -> None:
        self._bucket = await open_bucket(js, self.name, self._ttl)

    async def stop(self) -> None:
        return None

    async def get(self, key: str) -> dict[str, Any] | None:
        try:
            found = await self._bucket.get(kv_key(key))
        except KeyNotFoundError:
            return None
        return json.loads(found.value) if found.value is not None else None

    async def create(self, key: str, value: dict[str, Any]) -> bool:
        """Write only if the key does not exist yet: the first writer wins, atomically."""
        try:
            await self._bucket.create(kv_key(key), json.dumps(value).encode())
        except KeyWrongLastSequenceError:
            return False
        return True

    async def put(self, key: str, value: dict[str, Any]) -> None:
        await self._bucket.put(kv_key(key), json.dumps(value).encode())

    async def delete(self, key: str) -> None:
        await self._bucket.delete(kv_key(key))


def kv_key(key: str) -> str:
    """A NATS KV key allows only ``[-/_=.A-Za-z0-9]`` (and a ``.`` splits it into tokens), but an
    agent id may hold ``:``, ``@`` or ``+`` and a command id anything: every character but letters,
    digits, ``-`` and ``_`` becomes ``=XX`` per UTF-8 byte, so distinct ids stay distinct keys and
    the ids of those characters alone (all that mailbridge makes) keep the key they had."""
    return "".join(
        char if char in _KEY_CHARACTERS else "".join(f"={b:02X}" for b in char.encode())
        for char in key
    )


_KEY_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_")
