"""A NATS server and a database of a test's own, and the services on them, for stacks that must
not share the session's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from nats.aio.client import Client

from mailbridge.devstack.environment import Infrastructure, create_api_key
from mailbridge.devstack.system import RunningSystem, running_system
from mailbridge.shared.crypto import generate_key_spec
from mailbridge.shared.ids import new_id
from tests.conftest import a_nats_server
from tests.e2e.workers import connect


async def admin(dsn: str, statement: str) -> None:
    """One statement on its own connection (CREATE/DROP DATABASE cannot run in a pool's)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def own_infrastructure(postgres_dsn: str, directory: Path, name: str) -> Iterator[tuple[str, str]]:
    """``(nats_url, database_url)``: a NATS server of its own (by the session's rule: the one
    ``MAILBRIDGE_TEST_NATS_URL`` names, else an embedded one under ``directory``) and a new
    database on the session's PostgreSQL server, both gone afterwards."""
    with ExitStack() as teardown:
        nats_url = a_nats_server(directory, teardown.callback)
        yield nats_url, teardown.enter_context(own_database(postgres_dsn, name))


@contextmanager
def own_database(postgres_dsn: str, name: str) -> Iterator[str]:
    """The URL of a new database on the session's PostgreSQL server, dropped afterwards."""
    database = new_id(name).lower()
    asyncio.run(admin(postgres_dsn, f'CREATE DATABASE "{database}"'))
    try:
        yield postgres_dsn.rsplit("/", 1)[0] + "/" + database
    finally:
        asyncio.run(admin(postgres_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@contextmanager
def own_system(
    postgres_dsn: str,
    directory: Path,
    name: str,
    *,
    ca_file: Path | None = None,
    providers: Mapping[str, str] | None = None,
    keys: str | None = None,
    **running: Any,
) -> Iterator[RunningSystem]:
    """The services (``running``: as ``running_system`` takes them) on a NATS server and a
    database of their own, logging at WARNING to ``directory/services.log``."""
    with own_infrastructure(postgres_dsn, directory / "nats", name) as (nats_url, database_url):
        infra = Infrastructure(
            nats_url, database_url, keys or generate_key_spec(name), ca_file, "WARNING",
            providers=dict(providers or {}),
        )  # fmt: skip
        with running_system(infra, sink=directory / "services.log", **running) as system:
            yield system


@asynccontextmanager
async def operator_client(
    system: RunningSystem, **options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``system``'s config-api with its operator key."""
    headers = {"Authorization": f"Bearer {system.operator_key}"}
    async with httpx.AsyncClient(
        base_url=system.base_url, timeout=30, headers=headers, **options
    ) as client:
        yield client


def org_client(system: RunningSystem, org_id: str) -> httpx.AsyncClient:
    """A client holding an org key of ``org_id`` (made with config-api's own command)."""
    key = create_api_key(system.supervisor.services[0], "--org", org_id)
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.AsyncClient(base_url=system.base_url, headers=headers, timeout=30)


@pytest.fixture
async def stack_api(stack: RunningSystem) -> AsyncIterator[httpx.AsyncClient]:
    """The ``api`` of a module whose ``stack`` is its own: ``api = stack_api`` there."""
    async with operator_client(stack) as client:
        yield client


@pytest.fixture
async def stack_bus(stack: RunningSystem) -> AsyncIterator[Client]:
    """A NATS client of a module's own ``stack``: ``bus = stack_bus`` there."""
    client = await connect(stack.nats_url)
    yield client
    await client.close()
