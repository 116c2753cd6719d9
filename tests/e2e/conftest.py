"""The running system for end-to-end tests: the four services as processes on the test servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import BrowserContext, async_playwright

from mailbridge.devstack import system as devstack
from mailbridge.devstack.browser import launch_chromium
from mailbridge.devstack.environment import Infrastructure
from mailbridge.devstack.mailstack import MailStackEndpoints
from mailbridge.devstack.sandbox import SandboxProvider
from mailbridge.shared.crypto import generate_key_spec
from tests.e2e.databases import operator_client
from tests.e2e.oauth_browser import Browser
from tests.support.dns_server import DnsServer, dns_server_thread

TEST_TIMEOUT_SECONDS = 8.0
POLL_SECONDS = 2.0


class RunningSystem(devstack.RunningSystem):
    """The devstack's running system, by the name the end-to-end tests know it."""

    @property
    def postgres_dsn(self) -> str:  # the session's database: the name some tests read it by
        return self.database_url


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProvider]:
    """The Google and Microsoft look-alikes every OAuth test signs in at."""
    with SandboxProvider(Path(tmp_path_factory.mktemp("sandbox"))) as provider:
        yield provider


@pytest.fixture(scope="session")
def loopback_dns() -> Iterator[DnsServer]:
    """The DNS server of config-api's settings detection, knowing only the names a test adds to
    its ``records``: the e2e runs ask nothing of the machine's resolver, however many addresses
    Schemathesis makes up."""
    with dns_server_thread({}) as server:
        yield server


@pytest.fixture(scope="session")
def system(
    nats_url: str,
    postgres_dsn: str,
    mail_endpoints: MailStackEndpoints,
    sandbox: SandboxProvider,
    loopback_dns: DnsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningSystem]:
    """The session's services; their log lines go to ``system*/services.log`` under pytest's
    base temporary directory (pytest's capture would swallow them), kept after the run."""
    infra = Infrastructure(
        nats_url,
        postgres_dsn,
        generate_key_spec("e2e"),
        mail_endpoints.ca_file,
        "WARNING",
        providers=sandbox.settings(),
        dns_resolver=f"127.0.0.1:{loopback_dns.port}",
    )
    with devstack.running_system(
        infra, test_timeout=TEST_TIMEOUT_SECONDS, poll_interval=POLL_SECONDS,
        sink=tmp_path_factory.mktemp("system") / "services.log",
    ) as running:  # fmt: skip
        yield RunningSystem(**vars(running))


@pytest.fixture
async def api(system: RunningSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with operator_client(system) as client:
        yield client


@pytest.fixture
def browser(sandbox: SandboxProvider) -> Iterator[Browser]:
    """A person's browser at the sandbox's consent pages (its own CA trusted)."""
    with Browser(sandbox.ca_file) as opened:
        yield opened


@pytest.fixture
async def browser_context() -> AsyncIterator[BrowserContext]:
    """A fresh headless chromium (Debian's) and one context; the sandbox provider's certificate
    is from its own CA, which chromium does not know."""
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        try:
            yield await browser.new_context(ignore_https_errors=True)
        finally:
            await browser.close()
