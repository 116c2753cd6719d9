"""A reply's References chain (RFC 5322 §3.6.4): the MCP ``reply`` passes the original's chain,
``POST …/messages`` takes one as ``references`` (Message-IDs only, bounded: else a 422 naming
the field), and the command carries it to the mail-worker's builder."""

from __future__ import annotations

from typing import Any

import pytest

from mailbridge.config_api.domain.agent_tools import ReplyIn, reply_to
from mailbridge.shared.headers import MAX_REFERENCES, REFERENCES_KEPT
from tests.fakes.config_api import ORIGINAL, REF
from tests.support.config_api_app import _client, agent_with_mailbox, mcp_session, problem

SENDS = "/bridge/agents/a1/messages"


async def test_the_mcp_reply_sends_the_originals_chain() -> None:
    fakes, token, _ = await agent_with_mailbox()
    async with mcp_session(fakes, token) as session:
        await session.call_tool("reply", {"message_ref": REF, "text": "Shipped."})
    [command] = fakes.ledger.commands.values()
    assert (command.in_reply_to, command.references) == (ORIGINAL.message_id, ORIGINAL.references)


def test_a_chain_from_anyone_loses_what_is_no_message_id_and_keeps_the_newest() -> None:
    chain = [f"<r{n}@x.example>" for n in range(REFERENCES_KEPT + 5)]
    original = ORIGINAL.model_copy(update={"references": ["junk", *chain, "<a b@c>"]})
    reply = reply_to(original, ReplyIn(message_ref=REF, text="x"))
    assert reply.references == chain[-REFERENCES_KEPT:]


async def test_an_http_send_carries_its_references_to_the_command() -> None:
    fakes, token, _ = await agent_with_mailbox()
    chain = ["<root@x.example>", "<parent@x.example>"]
    body = {"to": ["a@x.example"], "text": "x", "in_reply_to": "<parent@x.example>"}
    async with _client(fakes, {"Authorization": f"Bearer {token}"}) as agent:
        queued = await agent.post(SENDS, json={**body, "references": chain})
    assert queued.status_code == 202, queued.text
    assert fakes.ledger.commands[queued.json()["command_id"]].references == chain


@pytest.mark.parametrize(
    "references",
    [
        ["not-a-message-id"],
        ["<a@x.example> <b@x.example>"],  # two ids in one entry
        ["<a@x.example>\r\nBcc: evil@evil.example"],
        [f"<{'a' * 1000}@x.example>"],
        [f"<r{n}@x.example>" for n in range(MAX_REFERENCES + 1)],
    ],
)
async def test_references_that_are_not_a_bounded_list_of_message_ids_are_a_422(
    references: list[Any],
) -> None:
    fakes, token, _ = await agent_with_mailbox()
    body = {"to": ["a@x.example"], "text": "x", "references": references}
    async with _client(fakes, {"Authorization": f"Bearer {token}"}) as agent:
        refused = await agent.post(SENDS, json=body)
    assert (refused.status_code, problem(refused)["code"]) == (422, "invalid_input")
    assert fakes.ledger.commands == {}
    assert any("references" in error["loc"] for error in problem(refused)["errors"])
