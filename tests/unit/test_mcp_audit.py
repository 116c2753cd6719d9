"""Every MCP tool call is one entry of the agent's audit trail: the tool, ``ok`` or the code it
failed with, the send it queued, the agent token as actor; never a word of its arguments.
config-api's real MCP server in process, on fakes, through the SDK's own client."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from mcp import ClientSession

from mailbridge.config_api.domain.audit import AuditEntry, AuditKind
from mailbridge.shared.errors import ErrorCode
from tests import strategies as s
from tests.fakes.config_api import REF
from tests.support.config_api_app import agent_with_mailbox, mcp_session

TOOLS = {"get_mailbox_status", "list_messages", "read_message", "send_email", "reply", "mark_seen"}


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    answer: dict[str, Any] = result.structured_content or {}
    return answer


def trail(fakes: Any) -> list[AuditEntry]:
    """The audit log's entries, oldest first."""
    return [entry for _, _, entry in fakes.audit.rows]


async def test_each_tool_call_is_one_entry_with_its_outcome_and_its_send() -> None:
    fakes, token, actor = await agent_with_mailbox()
    async with mcp_session(fakes, token) as session:
        await call(session, "get_mailbox_status")
        await call(session, "list_messages", limit=5)
        await call(session, "read_message", message_ref=REF)
        gone = await call(session, "read_message", message_ref="INBOX.1.9")
        replied = await call(session, "reply", message_ref=REF, text="Shipped today.")
        sent = await call(session, "send_email", to=["bob@x.example"], subject="Hi", text="x")
        bad = await call(session, "send_email", to=["not an address"], text="x")
        await call(session, "mark_seen", message_ref=REF)

    assert (gone["code"], bad["code"]) == ("not_found", "invalid_input")
    entries = trail(fakes)
    assert [(e.details["tool"], e.details["code"], e.details["command_id"]) for e in entries] == [
        ("get_mailbox_status", None, None),
        ("list_messages", None, None),
        ("read_message", None, None),
        ("read_message", "not_found", None),
        ("reply", None, replied["command_id"]),
        ("send_email", None, sent["command_id"]),
        ("send_email", "invalid_input", None),
        ("mark_seen", None, None),
    ]
    assert {(e.kind, e.actor) for e in entries} == {(AuditKind.MCP_TOOL_CALLED, actor)}
    assert entries[3].summary == "MCP tool read_message called: failed: not_found"
    assert [e.details["ok"] for e in entries].count(False) == 2


async def test_a_call_the_trail_cannot_record_still_answers() -> None:
    fakes, token, _ = await agent_with_mailbox()

    async def broken(_: AuditEntry) -> bool:
        raise ConnectionError("the database went away")

    fakes.audit.record = broken
    async with mcp_session(fakes, token) as session:
        sent = await call(session, "send_email", to=["bob@x.example"], text="x")
    assert sent["status"] == "sent", "an error would have the agent send it again"


@s.PROPERTIES
@given(
    folder=st.text(max_size=30),
    message_ref=st.text(max_size=30) | st.just(REF),
    subject=st.text(max_size=60),  # JSON carries any text but lone surrogates
    text=st.text(max_size=60),
    to=st.lists(s.ordinary_address_lists | st.text(max_size=30), min_size=1, max_size=2),
)
async def test_no_argument_text_reaches_an_entry(
    folder: str, message_ref: str, subject: str, text: str, to: list[str]
) -> None:
    """Whatever the arguments say, an entry holds only the tool's name, its outcome code and its
    command id: words of the trail's own, never the caller's."""
    fakes, token, actor = await agent_with_mailbox()
    async with mcp_session(fakes, token) as session:
        await call(session, "list_messages", folder=folder)
        await call(session, "read_message", message_ref=message_ref)
        await call(session, "reply", message_ref=message_ref, text=text, html=subject)
        await call(session, "send_email", to=to, subject=subject, text=text, cc=to)
    for entry in trail(fakes):
        tool, code, command_id = (entry.details[k] for k in ("tool", "code", "command_id"))
        assert set(entry.details) == {"tool", "ok", "code", "command_id"}
        assert tool in TOOLS and entry.actor == actor
        assert code is None or code in {c.value for c in ErrorCode}
        assert command_id is None or command_id in fakes.ledger.commands
        outcome = f"failed: {code}" if code else "ok"
        assert entry.summary == f"MCP tool {tool} called: {outcome}"
