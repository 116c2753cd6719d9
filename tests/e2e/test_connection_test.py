"""The walking skeleton's slice: HTTP → config-api → NATS → mail-worker → Dovecot and Postfix →
event → status, against the real servers."""

from __future__ import annotations

import asyncio
import subprocess

import httpx

from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.postgres import postgres_bin_dir
from mailbridge.shared.errors import ErrorCode, hint_of
from tests.e2e.conftest import RunningSystem
from tests.e2e.mailboxes import agent_with_mailbox, run_test, shown_config


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
