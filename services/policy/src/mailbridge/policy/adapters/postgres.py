"""PostgreSQL repositories of policy: org OAuth apps and client organizations.

Every change writes the events it is given to ``policy.outbox`` in its own transaction, then calls
``on_outbox_write`` (the relay's ``notify``) once it has committed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from mailbridge.policy.ports import StoredClientOrg, StoredOrgApp
from mailbridge.shared.messages import Event, Provider, Restrictions
from mailbridge.shared.outbox import write_outbox

SCHEMA = "policy"
_APP_COLUMNS = "org_id, provider, client_id, tenant_id, sealed_secret, updated_at"
_CLIENT_ORG_COLUMNS = "org_id, client_org_id, name, email_domain, restrictions, updated_at"


class _Store:
    """One of policy's tables: each change writes the events it is given in its transaction."""

    def __init__(
        self, pool: asyncpg.Pool, on_outbox_write: Callable[[], None] = lambda: None
    ) -> None:
        self._pool = pool
        self._on_outbox_write = on_outbox_write

    async def _deleted(self, events: Sequence[Event], statement: str, *args: object) -> bool:
        """Run a DELETE; when it removed any row, write ``events`` in its transaction. Answers
        whether it removed any."""
        async with self._pool.acquire() as connection, connection.transaction():
            removed = not (await connection.execute(statement, *args)).endswith(" 0")
            if removed:
                await write_outbox(connection, SCHEMA, events)
        if removed:
            self._on_outbox_write()
        return removed


class PostgresOrgApps(_Store):
    """``policy.org_oauth_apps``: an org's apps, replaced as one set."""

    async def of_org(self, org_id: str) -> list[StoredOrgApp]:
        rows = await self._pool.fetch(
            f"SELECT {_APP_COLUMNS} FROM policy.org_oauth_apps WHERE org_id = $1"  # noqa: S608
            " ORDER BY provider",
            org_id,
        )
        return [_app(row) for row in rows]

    async def replace(
        self, org_id: str, apps: list[StoredOrgApp], *, events: Sequence[Event]
    ) -> list[StoredOrgApp]:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "DELETE FROM policy.org_oauth_apps WHERE org_id = $1 AND provider <> ALL($2)",
                org_id,
                [app.provider.value for app in apps],
            )
            for app in apps:
                await connection.execute(_UPSERT_APP, *_app_values(app))
            await write_outbox(connection, SCHEMA, events)
        self._on_outbox_write()
        return await self.of_org(org_id)

    async def delete(self, org_id: str, *, events: Sequence[Event]) -> bool:
        return await self._deleted(
            events, "DELETE FROM policy.org_oauth_apps WHERE org_id = $1", org_id
        )


_UPSERT_APP = """
INSERT INTO policy.org_oauth_apps (org_id, provider, client_id, tenant_id, sealed_secret)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (org_id, provider) DO UPDATE SET
    client_id = EXCLUDED.client_id, tenant_id = EXCLUDED.tenant_id,
    sealed_secret = EXCLUDED.sealed_secret, updated_at = now()
"""


def _app_values(app: StoredOrgApp) -> tuple[Any, ...]:
    return app.org_id, app.provider.value, app.client_id, app.tenant_id, app.sealed_secret


def _app(row: asyncpg.Record) -> StoredOrgApp:
    return StoredOrgApp(**{**dict(row), "provider": Provider(row["provider"])})


class PostgresClientOrgs(_Store):
    """``policy.client_orgs``: client orgs, each id unique within its org."""

    async def get(self, org_id: str, client_org_id: str) -> StoredClientOrg | None:
        row = await self._pool.fetchrow(
            f"SELECT {_CLIENT_ORG_COLUMNS} FROM policy.client_orgs"  # noqa: S608
            " WHERE org_id = $1 AND client_org_id = $2",
            org_id,
            client_org_id,
        )
        return _client_org(row) if row is not None else None

    async def put(self, client_org: StoredClientOrg, *, events: Sequence[Event]) -> StoredClientOrg:
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                _UPSERT_CLIENT_ORG,
                client_org.org_id,
                client_org.client_org_id,
                client_org.name,
                client_org.email_domain,
                client_org.restrictions.model_dump_json(),
            )
            if row is None:  # an upsert with RETURNING always answers a row
                raise RuntimeError("the client org upsert returned nothing")
            await write_outbox(connection, SCHEMA, events)
        self._on_outbox_write()
        return _client_org(row)

    async def delete(self, org_id: str, client_org_id: str, *, events: Sequence[Event]) -> bool:
        return await self._deleted(
            events,
            "DELETE FROM policy.client_orgs WHERE org_id = $1 AND client_org_id = $2",
            org_id,
            client_org_id,
        )


_UPSERT_CLIENT_ORG = f"""
INSERT INTO policy.client_orgs (org_id, client_org_id, name, email_domain, restrictions)
VALUES ($1, $2, $3, $4, $5::jsonb)
ON CONFLICT (org_id, client_org_id) DO UPDATE SET
    name = EXCLUDED.name, email_domain = EXCLUDED.email_domain,
    restrictions = EXCLUDED.restrictions, updated_at = now()
RETURNING {_CLIENT_ORG_COLUMNS}
"""  # noqa: S608 (column names are constants)


def _client_org(row: asyncpg.Record) -> StoredClientOrg:
    restrictions = Restrictions.model_validate(json.loads(row["restrictions"]))
    return StoredClientOrg(**{**dict(row), "restrictions": restrictions})
