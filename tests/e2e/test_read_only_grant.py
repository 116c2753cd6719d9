"""A grant that can read but not send: an operator who asks Google for ``gmail.readonly`` only
(``MAILBRIDGE_GOOGLE_SCOPES``) gets agents whose connection test says so, by the scope's name,
instead of a Connected badge and a first send that fails.

The stack is this module's own: its oauth-broker asks for other scopes than the session's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.sandbox import SandboxProvider
from mailbridge.devstack.supervisor import ServiceProcess
from mailbridge.devstack.system import RunningSystem
from tests.e2e.databases import own_system, stack_api
from tests.e2e.oauth_agents import authorize, oauth_agent, sign_in, status_of
from tests.e2e.oauth_browser import Browser
from tests.support.waiting import eventually

api = stack_api  # this module's stack's client fixtures

READ_ONLY = "openid email https://www.googleapis.com/auth/gmail.readonly"


def reading_only(processes: list[ServiceProcess]) -> list[ServiceProcess]:
    return [
        replace(p, env={**p.env, "MAILBRIDGE_GOOGLE_SCOPES": READ_ONLY})
        if p.name == "oauth-broker" else p
        for p in processes
    ]  # fmt: skip


@pytest.fixture(scope="module")
def stack(
    postgres_dsn: str, mail_stack: MailStack, sandbox: SandboxProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningSystem]:  # fmt: skip
    with own_system(
        postgres_dsn, tmp_path_factory.mktemp("read-only"), "rodb",
        ca_file=mail_stack.endpoints.ca_file, providers=sandbox.settings(),
        only={"config-api", "policy", "oauth-broker", "mail-worker"}, arrange=reading_only,
    ) as system:  # fmt: skip
        yield system


async def test_a_grant_without_a_send_scope_fails_the_test_naming_the_scope(
    api: httpx.AsyncClient, stack: RunningSystem, sandbox: SandboxProvider
) -> None:
    agent = await oauth_agent(api, stack.base_url, sandbox, "google")
    with Browser(sandbox.ca_file) as browser:
        sign_in(browser, agent, (await authorize(api, agent))["authorization_url"])

    async def tested() -> dict[str, object] | None:
        view = await status_of(api, agent)
        return view if view["status"] == "error" else None

    view = await eventually(tested, what="the read-only agent's test failed", timeout=60)

    assert view["last_error"]["code"] == "oauth_scope_missing"
    assert "gmail.send" in view["last_error"]["message"]
    checks = view["last_test"]["checks"]
    assert (checks["api"]["ok"], checks["mailbox"]["ok"], checks["send"]["ok"]) == (
        True,
        True,
        False,
    )
