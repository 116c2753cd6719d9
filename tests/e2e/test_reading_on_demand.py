"""An agent reads its mailbox on demand over HTTP: config-api asks a mail-worker, which reads the
real Dovecot. Listed newest first, read parsed and raw, marked seen (as Dovecot then says), and
another org's key finds nothing there."""

from __future__ import annotations

import asyncio

import httpx

from mailbridge.devstack.mailstack import MailStack
from tests.e2e.conftest import RunningSystem
from tests.e2e.mailboxes import agent_with_mailbox


async def test_an_agent_lists_reads_and_marks_its_mail_seen(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack, seen_flags=(True, False))
    messages = f"/bridge/agents/{agent.agent_id}/mail/messages"

    page = await api.get(messages)
    assert page.status_code == 200, page.text
    listed = page.json()["messages"]
    assert [(m["subject"], m["seen"]) for m in listed] == [
        ("message 2", False),
        ("message 1", True),
    ]
    assert page.json()["next_cursor"] is None
    newest = listed[0]["message_ref"]

    read = await api.get(f"{messages}/{newest}")
    assert read.status_code == 200, read.text
    assert read.json()["message"]["subject"] == "message 2"
    assert read.json()["message"]["text"].strip() == "hi"
    raw = await api.get(f"{messages}/{newest}", params={"raw": "true"})
    assert raw.headers["content-type"] == "message/rfc822"
    assert b"Subject: message 2" in raw.content
    assert await asyncio.to_thread(mail_stack.seen_uids, agent.address) == {1}, "read with PEEK"

    marked = await api.post(f"{messages}/{newest}/seen")
    assert marked.status_code == 204, marked.text
    assert await asyncio.to_thread(mail_stack.seen_uids, agent.address) == {1, 2}


async def test_pages_follow_the_cursor_and_a_bad_ref_is_refused(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack, seen_flags=(False, False, False))
    messages = f"/bridge/agents/{agent.agent_id}/mail/messages"

    first = (await api.get(messages, params={"limit": 2})).json()
    rest = (await api.get(messages, params={"limit": 2, "cursor": first["next_cursor"]})).json()

    subjects = [m["subject"] for m in first["messages"] + rest["messages"]]
    assert subjects == ["message 3", "message 2", "message 1"]
    assert rest["next_cursor"] is None
    uidvalidity, _, folder = first["messages"][0]["message_ref"].split(".")
    gone = await api.get(f"{messages}/{uidvalidity}.99.{folder}")
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")
    no_folder = await api.get(messages, params={"folder": "Nowhere"})
    assert (no_folder.status_code, no_folder.json()["code"]) == (404, "not_found")


async def test_another_orgs_key_cannot_read_the_mailbox(
    api: httpx.AsyncClient, mail_stack: MailStack, system: RunningSystem
) -> None:
    agent = await agent_with_mailbox(api, mail_stack, seen_flags=(False,))
    other_key = system.new_api_key("--org", "org-reading-other")
    headers = {"Authorization": f"Bearer {other_key}"}
    async with httpx.AsyncClient(base_url=system.base_url, headers=headers) as other:
        answer = await other.get(f"/bridge/agents/{agent.agent_id}/mail/messages")
    assert answer.status_code == 404
    assert "message 1" not in answer.text


async def test_a_message_read_on_demand_is_screened_as_a_received_one(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    results = f"{mail_stack.endpoints.authserv_id}; spf=fail smtp.mailfrom=bank.example; dkim=none"
    raw = (
        f"Authentication-Results: {results}\r\nFrom: Bank <alerts@bank.example>\r\n"
        f"To: {agent.address}\r\nSubject: verify\r\n\r\nPlease act on this.\r\n"
    ).encode()
    await asyncio.to_thread(mail_stack.seed_raw, agent.address, raw)
    messages = f"/bridge/agents/{agent.agent_id}/mail/messages"
    ref = (await api.get(messages)).json()["messages"][0]["message_ref"]

    screening = (await api.get(f"{messages}/{ref}")).json()["message"]["screening"]

    assert (screening["authserv_id"], screening["spf"], screening["dkim"]) == (
        mail_stack.endpoints.authserv_id,
        "fail",
        "none",
    )
