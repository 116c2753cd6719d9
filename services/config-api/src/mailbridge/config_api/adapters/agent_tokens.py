"""PostgresAgentTokenStore: agent tokens in ``config_api.agent_tokens``.

Never cached (unlike API keys): a token is read on every request, one primary-key lookup, so a
revoked token is refused by every replica from the moment ``revoke`` commits.
"""

from __future__ import annotations

import asyncpg

from mailbridge.config_api.domain.agent_tokens import NewAgentToken, StoredAgentToken, new_token

_SELECT = (
    "SELECT token_id, agent_id, org_id, name, secret_hash, created_at,"
    " revoked_at IS NOT NULL AS revoked FROM config_api.agent_tokens"
)


class PostgresAgentTokenStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self, agent_id: str, org_id: str, name: str | None
    ) -> tuple[NewAgentToken, StoredAgentToken]:
        token = new_token()
        await self._pool.execute(
            "INSERT INTO config_api.agent_tokens (token_id, agent_id, org_id, name, secret_hash)"
            " VALUES ($1, $2, $3, $4, $5)",
            token.token_id,
            agent_id,
            org_id,
            name,
            token.secret_hash,
        )
        stored = await self.find(token.token_id)
        assert stored is not None  # just written
        return token, stored

    async def find(self, token_id: str) -> StoredAgentToken | None:
        row = await self._pool.fetchrow(_SELECT + " WHERE token_id = $1", token_id)
        return StoredAgentToken(**dict(row)) if row else None

    async def live(self, agent_id: str) -> list[StoredAgentToken]:
        rows = await self._pool.fetch(
            _SELECT + " WHERE agent_id = $1 AND revoked_at IS NULL ORDER BY created_at, token_id",
            agent_id,
        )
        return [StoredAgentToken(**dict(row)) for row in rows]

    async def revoke(self, agent_id: str, token_id: str) -> bool:
        done = await self._pool.fetchval(
            "UPDATE config_api.agent_tokens SET revoked_at = now()"
            " WHERE agent_id = $1 AND token_id = $2 AND revoked_at IS NULL RETURNING 1",
            agent_id,
            token_id,
        )
        return done is not None
