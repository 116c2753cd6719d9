"""API key storage in PostgreSQL, behind a short-lived in-process cache.

The cache keeps authentication off the database for repeated requests; a revoked key stops working
within ``ttl_seconds`` on every replica.
"""

from __future__ import annotations

import time

import asyncpg

from mailbridge.config_api.domain.api_keys import NewKey, StoredKey, new_key


class PostgresApiKeyStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, org_id: str | None, name: str) -> NewKey:
        key = new_key()
        await self._pool.execute(
            "INSERT INTO config_api.api_keys (key_id, org_id, name, secret_hash)"
            " VALUES ($1, $2, $3, $4)",
            key.key_id,
            org_id,
            name,
            key.secret_hash,
        )
        return key

    async def find(self, key_id: str) -> StoredKey | None:
        row = await self._pool.fetchrow(
            "SELECT key_id, org_id, name, secret_hash, revoked_at IS NOT NULL AS revoked"
            " FROM config_api.api_keys WHERE key_id = $1",
            key_id,
        )
        return StoredKey(**dict(row)) if row else None

    async def list(self) -> list[StoredKey]:
        rows = await self._pool.fetch(
            "SELECT key_id, org_id, name, secret_hash, revoked_at IS NOT NULL AS revoked"
            " FROM config_api.api_keys ORDER BY created_at"
        )
        return [StoredKey(**dict(row)) for row in rows]

    async def revoke(self, key_id: str) -> bool:
        done = await self._pool.fetchval(
            "UPDATE config_api.api_keys SET revoked_at = now()"
            " WHERE key_id = $1 AND revoked_at IS NULL RETURNING 1",
            key_id,
        )
        return done is not None


class CachedKeyLookup:
    """``find`` with a time-to-live cache, misses included (an unknown id costs one query)."""

    def __init__(self, store: PostgresApiKeyStore, ttl_seconds: float = 30.0) -> None:
        self._store, self._ttl = store, ttl_seconds
        self._entries: dict[str, tuple[float, StoredKey | None]] = {}

    async def find(self, key_id: str) -> StoredKey | None:
        now = time.monotonic()
        cached = self._entries.get(key_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        found = await self._store.find(key_id)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key_id] = (now, found)
        return found
