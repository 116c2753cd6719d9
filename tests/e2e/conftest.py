"""The running system for end-to-end tests: the four services as processes on the test servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from mailbridge.devstack.environment import Infrastructure, create_api_key, services
from mailbridge.devstack.mailstack import MailStackEndpoints
from mailbridge.devstack.processes import free_port
from mailbridge.devstack.supervisor import Supervisor
from mailbridge.shared.crypto import generate_key_spec

TEST_TIMEOUT_SECONDS = 8.0
POLL_SECONDS = 2.0


@dataclass
class RunningSystem:
    base_url: str
    supervisor: Supervisor
    postgres_dsn: str
    operator_key: str


@pytest.fixture(scope="session")
def system(
    nats_url: str, postgres_dsn: str, mail_endpoints: MailStackEndpoints
) -> Iterator[RunningSystem]:
    port = free_port()
    infra = Infrastructure(
        nats_url, postgres_dsn, generate_key_spec("e2e"), mail_endpoints.ca_file, "WARNING"
    )
    supervisor = Supervisor(
        services(
            infra, http_port=port, test_timeout=TEST_TIMEOUT_SECONDS, poll_interval=POLL_SECONDS
        )
    )
    with supervisor:
        supervisor.wait_ready(timeout=60)
        operator_key = create_api_key(supervisor.services[0], "--operator")
        yield RunningSystem(f"http://127.0.0.1:{port}", supervisor, postgres_dsn, operator_key)


@pytest.fixture
async def api(system: RunningSystem) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {system.operator_key}"}
    async with httpx.AsyncClient(base_url=system.base_url, timeout=30, headers=headers) as client:
        yield client
