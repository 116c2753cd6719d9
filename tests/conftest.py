"""Infrastructure for every test level, from one place.

Each server comes from a ``MAILBRIDGE_TEST_*`` variable when set, else an embedded process on a
free loopback port, else testcontainers when a Docker engine answers. A suite that cannot get its
servers fails with a message saying what is missing; it never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from mailbridge.devstack.mailstack import MailStack, MailStackEndpoints

ROOT = Path(__file__).resolve().parents[1]


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    return probe.returncode == 0


def _first_available(
    name: str, env: str, embedded: Callable[[], str], container: Callable[[], str]
) -> str:
    if os.environ.get(env):
        return os.environ[env]
    failures: list[str] = []
    try:
        return embedded()
    except Exception as exc:  # report every way we tried, then fail loudly
        failures.append(f"embedded {name}: {exc}")
    if _docker_answers():
        return container()
    failures.append("testcontainers: no Docker engine answers")
    pytest.fail(f"no {name} for the tests (set {env} to use your own):\n" + "\n".join(failures))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("infra")


@pytest.fixture(scope="session")
def nats_url(data_dir: Path, request: pytest.FixtureRequest) -> str:
    return a_nats_server(data_dir / "nats", request.addfinalizer)


def a_nats_server(directory: Path, on_teardown: Callable[[Callable[[], object]], object]) -> str:
    """A NATS server's URL by the one rule: ``MAILBRIDGE_TEST_NATS_URL``, else an embedded
    nats-server under ``directory``, else a container; ``on_teardown`` gets what stops it."""
    from mailbridge.devstack.nats import EmbeddedNats

    def embedded() -> str:
        server = EmbeddedNats(directory)
        on_teardown(server.stop)
        return server.start()

    def container() -> str:
        from testcontainers.nats import NatsContainer

        nats = NatsContainer().with_command("-js")
        nats.start()
        on_teardown(nats.stop)
        return str(nats.nats_uri())

    return _first_available("NATS server", "MAILBRIDGE_TEST_NATS_URL", embedded, container)


@pytest.fixture(scope="session")
def postgres_dsn(data_dir: Path, request: pytest.FixtureRequest) -> str:
    from mailbridge.devstack.postgres import EmbeddedPostgres

    def embedded() -> str:
        server = EmbeddedPostgres(data_dir / "postgres")
        request.addfinalizer(server.stop)
        return server.start()

    def container() -> str:
        from testcontainers.postgres import PostgresContainer

        postgres = PostgresContainer("postgres:16", driver=None)
        postgres.start()
        request.addfinalizer(postgres.stop)
        return str(postgres.get_connection_url())

    return _first_available("PostgreSQL", "MAILBRIDGE_TEST_DATABASE_URL", embedded, container)


@pytest.fixture(scope="session")
def mail_stack(data_dir: Path) -> Iterator[MailStack]:
    """The local mail stack: real Dovecot (IMAP) and Postfix (SMTP submission)."""
    stack = MailStack(data_dir / "mail")
    try:
        stack.start()
    except Exception as exc:
        pytest.fail(f"the local mail stack (Dovecot + Postfix) could not start:\n{exc}")
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def mail_endpoints(mail_stack: MailStack) -> MailStackEndpoints:
    return mail_stack.endpoints


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
def js(nc: Client) -> JetStreamContext:
    return nc.jetstream()


# Per-test timeouts by level: a hung unit test fails in seconds, not in the global 300 s. A test
# that needs longer says so with its own @pytest.mark.timeout, which wins.
TIMEOUT_SECONDS = {"unit": 20, "contract": 60, "integration": 120, "e2e": 300}


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Each test's level is the folder it lives in; the level sets its default timeout."""
    for item in items:
        level = Path(str(item.fspath)).relative_to(ROOT / "tests").parts[0]
        if level in TIMEOUT_SECONDS:
            item.add_marker(getattr(pytest.mark, level))
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(TIMEOUT_SECONDS[level]))
