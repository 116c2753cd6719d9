"""The walking skeleton's slice: HTTP → config-api → NATS → mail-worker → Dovecot and Postfix →
event → status, against the real servers."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass
from typing import Any

import httpx

from mailbridge.devstack.mailstack import MailStack, MailStackEndpoints
from mailbridge.devstack.postgres import postgres_bin_dir
from mailbridge.shared.errors import ErrorCode, hint_of
from mailbridge.shared.ids import new_id
from tests.e2e.conftest import RunningSystem


def imap_config(mail: MailStackEndpoints, address: str, password: str) -> dict[str, Any]:
    return {
        "provider": "imap",
        "email": address,
        "imap": {"host": mail.host, "port": mail.imap_port, "security": "ssl"},
        "smtp": {"host": mail.host, "port": mail.smtp_starttls_port, "security": "starttls"},
        "password": password,
    }


@dataclass(frozen=True)
class Agent:
    agent_id: str
    address: str
    password: str


async def agent_with_mailbox(
    api: httpx.AsyncClient,
    mail_stack: MailStack,
    *,
    saved_password: str | None = None,
    seen_flags: tuple[bool, ...] = (),
) -> Agent:
    """A new agent whose mailbox exists in Dovecot, seeded, with its config saved."""
    agent_id = new_id("agent")
    password = "app-" + new_id()
    address = await asyncio.to_thread(
        mail_stack.create_mailbox, agent_id.replace("_", "-"), password
    )
    for number, seen in enumerate(seen_flags, start=1):
        await asyncio.to_thread(
            mail_stack.seed_message, address, subject=f"message {number}", body="hi", seen=seen
        )
    (await api.put(f"/bridge/agents/{agent_id}", json={"org_id": "org-e2e"})).raise_for_status()
    config = imap_config(mail_stack.endpoints, address, saved_password or password)
    saved = await api.put(f"/bridge/agents/{agent_id}/email-config", json=config)
    saved.raise_for_status()
    assert saved.json()["status"] == "configured"
    return Agent(agent_id, address, password)


async def shown_config(api: httpx.AsyncClient, agent: Agent) -> dict[str, Any]:
    answer = await api.get(f"/bridge/agents/{agent.agent_id}/email-config")
    answer.raise_for_status()
    shown: dict[str, Any] = answer.json()
    return shown


async def run_test(api: httpx.AsyncClient, agent: Agent) -> httpx.Response:
    return await api.post(f"/bridge/agents/{agent.agent_id}/email-config/test")


async def test_a_connection_test_shows_inbox_total_unread_and_address(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack, seen_flags=(True, False, False))

    answer = await run_test(api, agent)

    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["ok"] is True, result
    assert (result["email"], result["inbox_total"], result["unread"]) == (agent.address, 3, 2)
    assert result["checks"]["imap"]["ok"]
    assert result["checks"]["smtp"]["ok"]
    shown = await shown_config(api, agent)
    assert (shown["status"], shown["last_error"]) == ("connected", None)


async def test_a_wrong_password_answers_auth_failed_and_sets_the_error_status(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack, saved_password="not-the-password")

    result = (await run_test(api, agent)).json()

    assert result["ok"] is False
    assert result["error"]["code"] == ErrorCode.AUTH_FAILED
    assert result["error"]["hint"] == hint_of(ErrorCode.AUTH_FAILED)
    shown = await shown_config(api, agent)
    assert shown["status"] == "error"
    assert shown["last_error"]["code"] == "auth_failed"
    assert shown["last_error"]["hint"] == hint_of(ErrorCode.AUTH_FAILED)


async def test_without_a_mail_worker_the_test_answers_504_and_the_status_stays(
    api: httpx.AsyncClient, system: RunningSystem, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    await asyncio.to_thread(system.supervisor.stop_service, "mail-worker")
    try:
        answer = await run_test(api, agent)
    finally:
        await asyncio.to_thread(system.supervisor.start_service, "mail-worker")
        await asyncio.to_thread(system.supervisor.wait_ready, 60)

    assert answer.status_code == 504
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "worker_unavailable"
    assert (await shown_config(api, agent))["status"] == "configured"


async def test_a_database_dump_holds_no_plaintext_password(
    api: httpx.AsyncClient, system: RunningSystem, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    assert (await run_test(api, agent)).json()["ok"] is True

    dump = subprocess.run(
        [str(postgres_bin_dir() / "pg_dump"), "--dbname", system.postgres_dsn],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip

    assert agent.agent_id in dump  # the dump holds this agent's rows…
    assert agent.password not in dump  # …but never its password
