"""An AI agent uses its mailbox through the MCP server at ``/mcp``, with the SDK's own client and
its agent token, against the running services and the real Dovecot and Postfix: it lists, reads,
replies (the reply lands, threaded under the whole conversation, in the original sender's
mailbox) and sends, each call in the agent's audit trail; policy's
refusal comes back as its code; agent A's token reaches nothing of agent B's; a revoked token is
refused at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from mailbridge.devstack.mailstack import MailStack
from mailbridge.shared.ids import new_id
from tests.e2e.conftest import RunningSystem
from tests.e2e.mailboxes import Agent, agent_with_mailbox, delivered, new_recipient

ORG = "org-e2e"
TOOLS = {"get_mailbox_status", "list_messages", "read_message", "send_email", "reply", "mark_seen"}


async def agent_token(api: httpx.AsyncClient, agent: Agent) -> str:
    made = await api.post(f"/bridge/agents/{agent.agent_id}/agent-tokens", json={"name": "e2e"})
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


@asynccontextmanager
async def mcp_session(system: RunningSystem, token: str) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{system.base_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def called(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """The tool's structured answer; fails on an error result, saying it."""
    result: CallToolResult = await session.call_tool(tool, arguments)
    assert not result.is_error, result.structured_content
    answer: dict[str, Any] = result.structured_content
    return answer


async def refused(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result: CallToolResult = await session.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    error: dict[str, Any] = result.structured_content
    assert set(error) == {"code", "message", "hint"}
    return error


def original_from(sender: str, to: str, message_id: str, references: list[str]) -> bytes:
    return (
        f"From: Ada <{sender}>\r\nTo: {to}\r\nSubject: Your order\r\n"
        f"Message-ID: {message_id}\r\nReferences: {' '.join(references)}\r\n"
        "Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\nWhere is it?\r\n"
    ).encode()


async def tool_calls(api: httpx.AsyncClient, agent: Agent) -> list[dict[str, Any]]:
    """The agent's audit entries of MCP tool calls, oldest first."""
    path = f"/bridge/agents/{agent.agent_id}/audit"
    answer = await api.get(path, params={"kind": "mcp.tool_called", "limit": 50})
    answer.raise_for_status()
    return list(reversed(answer.json()["entries"]))


async def test_an_agent_lists_reads_replies_and_sends_through_mcp(
    api: httpx.AsyncClient, mail_stack: MailStack, system: RunningSystem
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    sender = await agent_with_mailbox(api, mail_stack)  # its mailbox is read back over HTTP
    original_id = f"<{new_id('orig')}@customer.example>"
    thread = [f"<{new_id('root')}@customer.example>", f"<{new_id('mid')}@shop.example>"]
    raw = original_from(sender.address, agent.address, original_id, thread)
    await asyncio.to_thread(mail_stack.seed_raw, agent.address, raw)
    someone, _ = await new_recipient(mail_stack)

    token = await agent_token(api, agent)
    async with mcp_session(system, token) as session:
        assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS
        status = await called(session, "get_mailbox_status")
        assert (status["status"], status["address"]) == ("configured", agent.address)
        listed = (await called(session, "list_messages", limit=5))["messages"]
        assert [m["subject"] for m in listed] == ["Your order"]
        ref = listed[0]["message_ref"]
        read = await called(session, "read_message", message_ref=ref)
        assert read["message"]["text"].strip() == "Where is it?"
        answered = await called(session, "reply", message_ref=ref, text="Shipped today.")
        sent = await called(session, "send_email", to=[someone], subject="Hello", text="Hi!")
        await called(session, "mark_seen", message_ref=ref)

    assert (answered["status"], sent["status"]) == ("sent", "sent")
    assert await delivered(mail_stack, sender.address) == 1
    assert await delivered(mail_stack, someone) == 1
    reply = (await api.get(f"/bridge/agents/{sender.agent_id}/mail/messages")).json()
    [arrived] = reply["messages"]
    assert arrived["subject"] == "Re: Your order"
    shown = await api.get(
        f"/bridge/agents/{sender.agent_id}/mail/messages/{arrived['message_ref']}"
    )
    assert shown.json()["message"]["in_reply_to"] == original_id
    assert shown.json()["message"]["references"] == [*thread, original_id]
    assert await asyncio.to_thread(mail_stack.seen_uids, agent.address) == {1}

    calls = await tool_calls(api, agent)
    assert [(c["details"]["tool"], c["details"]["ok"]) for c in calls] == [
        (tool, True) for tool in ("get_mailbox_status", "list_messages", "read_message",
                                  "reply", "send_email", "mark_seen")
    ]  # fmt: skip
    assert {c["actor"] for c in calls} == {f"agent-token:{token.split('_')[1]}"}
    sends = [c["details"]["command_id"] for c in calls if c["details"]["command_id"]]
    assert sends == [answered["command_id"], sent["command_id"]]
    assert "Shipped today." not in json.dumps(calls) and "Hi!" not in json.dumps(calls)


async def test_a_refused_send_answers_the_policy_code_through_mcp(
    api: httpx.AsyncClient, mail_stack: MailStack, system: RunningSystem
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    client_org_id = new_id("client")
    rules = {"name": "Acme", "restrictions": {"allowed_recipients": ["allowed.example"]}}
    (
        await api.put(f"/bridge/orgs/{ORG}/client-orgs/{client_org_id}", json=rules)
    ).raise_for_status()
    link = {"org_id": ORG, "client_org_id": client_org_id}
    (await api.put(f"/bridge/agents/{agent.agent_id}", json=link)).raise_for_status()
    stranger, _ = await new_recipient(mail_stack)

    async with mcp_session(system, await agent_token(api, agent)) as session:
        answer = await called(session, "send_email", to=[stranger], subject="Hi", text="x")
        bad = await refused(session, "send_email", to=["not an address"], text="x")
    tools = [(c["details"]["tool"], c["details"]["code"]) for c in await tool_calls(api, agent)]
    assert tools == [("send_email", None), ("send_email", "invalid_input")]

    assert (answer["status"], answer["error"]["code"]) == ("blocked", "recipient_not_allowed")
    assert bad["code"] == "invalid_input"
    assert await asyncio.to_thread(mail_stack.count_messages, stranger) == 0


async def test_agent_a_token_reaches_nothing_of_agent_b(
    api: httpx.AsyncClient, mail_stack: MailStack, system: RunningSystem
) -> None:
    a = await agent_with_mailbox(api, mail_stack, seen_flags=(False,))
    b = await agent_with_mailbox(api, mail_stack, seen_flags=(False,))
    token = await agent_token(api, a)
    bearer = {"Authorization": f"Bearer {token}"}
    send = {"to": [b.address], "subject": "as b", "text": "x"}

    async with httpx.AsyncClient(base_url=system.base_url, headers=bearer, timeout=30) as as_a:
        own = await as_a.get(f"/bridge/agents/{a.agent_id}/mail/messages")
        reads_b = await as_a.get(f"/bridge/agents/{b.agent_id}/mail/messages")
        sends_as_b = await as_a.post(f"/bridge/agents/{b.agent_id}/messages", json=send)
        config = await as_a.get(f"/bridge/agents/{a.agent_id}/email-config")
        minted = await as_a.post(f"/bridge/agents/{a.agent_id}/agent-tokens")

    assert own.status_code == 200, own.text
    assert (reads_b.status_code, sends_as_b.status_code) == (404, 404)
    assert "message 1" not in reads_b.text
    assert (config.status_code, minted.status_code) == (403, 403)
    async with mcp_session(system, token) as session:  # MCP names no agent: always its own
        assert (await called(session, "get_mailbox_status"))["address"] == a.address
    assert await asyncio.to_thread(mail_stack.count_messages, b.address) == 1, "nothing sent"


async def test_a_revoked_token_and_an_api_key_are_refused_on_mcp(
    api: httpx.AsyncClient, mail_stack: MailStack, system: RunningSystem
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    token = await agent_token(api, agent)
    tokens = f"/bridge/agents/{agent.agent_id}/agent-tokens"
    [listed] = (await api.get(tokens)).json()["tokens"]
    assert token not in json.dumps(listed)
    async with mcp_session(system, token) as session:
        await called(session, "get_mailbox_status")

    assert (await api.delete(f"{tokens}/{listed['token_id']}")).status_code == 204

    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=system.base_url, timeout=30) as anyone:
        revoked = await anyone.post(
            "/mcp", json=ping, headers={**accept, "Authorization": f"Bearer {token}"}
        )
        reads = await anyone.get(
            f"/bridge/agents/{agent.agent_id}/mail/messages",
            headers={"Authorization": f"Bearer {token}"},
        )
        api_key = await anyone.post(
            "/mcp", json=ping, headers={**accept, "Authorization": f"Bearer {system.operator_key}"}
        )
    assert (revoked.status_code, reads.status_code) == (401, 401)
    assert (api_key.status_code, api_key.json()["code"]) == (401, "unauthorized")
    assert "agent token" in api_key.json()["title"]
    assert (await api.get(tokens)).json()["tokens"] == []
