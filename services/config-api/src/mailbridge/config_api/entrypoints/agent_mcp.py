"""The MCP server for agents (``/mcp``, Streamable HTTP, the official ``mcp`` SDK): an AI agent
holding its agent token uses its one mailbox through six tools, each a thin call of the handlers
the HTTP routes call.

- Stateless and JSON-answered: every POST stands alone, so any config-api replica serves it
  (no session lives in one replica's memory) and every request is authenticated afresh: a
  revoked token is refused from its next request on.
- Only an agent token passes the gate (``AgentTokenGate``); an API key is refused (401) — an
  operator acting for an agent uses the HTTP routes, which name the agent.
- A refusal is a tool error result whose structured content is SPEC §7's ``{code, message,
  hint}``; a protocol error stays a JSON-RPC error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import FastAPI
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mailbridge.config_api.container import Container
from mailbridge.config_api.domain.agent_tokens import NOT_AN_AGENT_TOKEN
from mailbridge.config_api.domain.agent_tools import (
    SEND_WAIT_SECONDS,
    MailboxStatusView,
    ReplyIn,
    ToolError,
)
from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.mail_views import MessagePage, MessageView
from mailbridge.config_api.domain.outgoing import MAX_SUBJECT, OutgoingMessageIn, SendView
from mailbridge.config_api.entrypoints.problems import problem
from mailbridge.config_api.handlers import agent_tokens, agent_tools, audit, reading
from mailbridge.shared.addresses import MAX_RECIPIENTS
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import GetMessage, ListMessages, MarkSeen
from mailbridge.shared.messages.reading import FOLDER_MAX_CHARS, MAX_LIST_LIMIT

PATH = "/mcp"
_PRINCIPAL = "mailbridge.principal"  # where the gate leaves the caller in the ASGI scope
INSTRUCTIONS = """
The mailbox of the agent this token belongs to. Read with list_messages and read_message (reading
marks nothing seen; mark_seen does), answer with reply, write with send_email. A send is checked by
the client organization's policy like any other: a refusal comes back as an error result with its
code (recipient_not_allowed, send_limit_reached, ...) and a hint. Errors carry {code, message,
hint}: the hint says what to do.
"""

Use = Callable[[Container, Principal], Awaitable[BaseModel]]
Folder = Annotated[str, Field(min_length=1, max_length=FOLDER_MAX_CHARS, description="as listed")]
Limit = Annotated[int, Field(ge=1, le=MAX_LIST_LIMIT, description="messages on this page")]
Cursor = Annotated[str | None, Field(description="`next_cursor` of the previous page")]
MessageRef = Annotated[str, Field(description="a `message_ref` from `list_messages`")]
Addresses = Annotated[list[str], Field(max_length=MAX_RECIPIENTS, description="addresses")]
Body = Annotated[str | None, Field(description="the message's text (or HTML) body")]


def build_server() -> MCPServer:
    server: MCPServer = MCPServer("mailbridge", instructions=INSTRUCTIONS)

    @server.tool(title="Mailbox status")
    async def get_mailbox_status(ctx: Context) -> Annotated[CallToolResult, MailboxStatusView]:
        """The mailbox's status (connected, error, ...), its address and last error."""
        return await _answer(ctx, "get_mailbox_status", _status)

    @server.tool(title="List messages")
    async def list_messages(
        ctx: Context, folder: Folder = "INBOX", limit: Limit = 20, cursor: Cursor = None
    ) -> Annotated[CallToolResult, MessagePage]:
        """A page of a folder, newest first: envelopes, never bodies; the next page (older)
        from `next_cursor`."""
        return await _answer(
            ctx, "list_messages", lambda c, who: _page(c, who, folder, limit, cursor)
        )

    @server.tool(title="Read a message")
    async def read_message(
        ctx: Context, message_ref: MessageRef
    ) -> Annotated[CallToolResult, MessageView]:
        """One message, parsed: from, to, subject, text, html, attachments, screening (whether
        its sender is authenticated or a look-alike). Reading does not mark it seen."""
        return await _answer(ctx, "read_message", lambda c, who: _read(c, who, message_ref))

    @server.tool(title="Mark seen")
    async def mark_seen(ctx: Context, message_ref: MessageRef) -> Annotated[CallToolResult, Done]:
        """Flag one message seen, as a mail client does once it was read."""
        return await _answer(ctx, "mark_seen", lambda c, who: _mark_seen(c, who, message_ref))

    @server.tool(title="Send an email")
    async def send_email(
        ctx: Context,
        to: Addresses,
        subject: Annotated[str, Field(max_length=MAX_SUBJECT)] = "",
        text: Body = None,
        html: Body = None,
        cc: Addresses | None = None,
        bcc: Addresses | None = None,
    ) -> Annotated[CallToolResult, SendView]:
        """Send a new message. Answers its command_id and, after a few seconds at most, `sent`,
        `blocked` or `failed` with the error; `queued` when not settled yet."""
        fields = {"to": to, "cc": cc or [], "bcc": bcc or [], "subject": subject}
        return await _answer(ctx, "send_email", lambda c, who: _send(
            c, who, lambda: OutgoingMessageIn(**fields, text=text, html=html)))  # fmt: skip

    @server.tool(title="Reply")
    async def reply(
        ctx: Context, message_ref: MessageRef, text: Body = None, html: Body = None
    ) -> Annotated[CallToolResult, SendView]:
        """Answer a message: to its Reply-To (else its From), `Re:` its subject, threaded
        (In-Reply-To, References). Answers as send_email does."""
        answer = ReplyIn(message_ref=message_ref, text=text, html=html)
        return await _answer(ctx, "reply", lambda c, who: _reply(c, who, answer))

    return server


class Done(BaseModel):
    done: bool = True


def _agent(principal: Principal) -> str:
    assert principal.agent_id is not None  # the gate lets agent tokens only
    return principal.agent_id


async def _status(c: Container, who: Principal) -> MailboxStatusView:
    return await agent_tools.mailbox_status(
        _agent(who), repo=c.repo, policy=c.policy, principal=who
    )


async def _page(
    c: Container, who: Principal, folder: str, limit: int, cursor: str | None
) -> MessagePage:
    request = ListMessages(agent_id=_agent(who), folder=folder, limit=limit, cursor=cursor)
    return MessagePage.of(
        await reading.list_messages(request, repo=c.repo, mail=c.mail, principal=who)
    )


async def _read(c: Container, who: Principal, message_ref: str) -> MessageView:
    request = GetMessage(agent_id=_agent(who), message_ref=message_ref)
    return MessageView.of(
        await reading.get_message(request, repo=c.repo, mail=c.mail, principal=who)
    )


async def _mark_seen(c: Container, who: Principal, message_ref: str) -> Done:
    request = MarkSeen(agent_id=_agent(who), message_ref=message_ref)
    await reading.mark_seen(request, repo=c.repo, mail=c.mail, principal=who)
    return Done()


async def _send(c: Container, who: Principal, message: Callable[[], OutgoingMessageIn]) -> SendView:
    return await agent_tools.send_and_wait(
        _agent(who), message(), repo=c.repo, ledger=c.ledger, content=c.content,
        principal=who, wait_seconds=SEND_WAIT_SECONDS,
    )  # fmt: skip


async def _reply(c: Container, who: Principal, answer: ReplyIn) -> SendView:
    outgoing = await agent_tools.reply_message(
        _agent(who), answer, repo=c.repo, mail=c.mail, principal=who
    )
    return await _send(c, who, lambda: outgoing)


async def _answer(ctx: Context, tool: str, use: Use) -> CallToolResult:
    """The use case's answer as structured content, or its refusal as an error result; either
    way one entry of the agent's audit trail, which never holds the arguments."""
    request = ctx.request_context.request
    assert isinstance(request, Request)  # Streamable HTTP hands every message its request
    container: Container = request.app.state.container
    principal: Principal = request.scope[_PRINCIPAL]
    called_at = container.clock.now()
    result = await _result(container, principal, use)
    outcome = result.structured_content or {}
    code = outcome.get("code") if result.is_error else None
    await audit.record_tool_call(
        principal,
        tool,
        code=code,
        command_id=outcome.get("command_id"),
        called_at=called_at,
        trail=container.audit,
    )
    return result


async def _result(container: Container, principal: Principal, use: Use) -> CallToolResult:
    try:
        answer = await use(container, principal)
    except MailbridgeError as refused:
        return _error(refused.info())
    except ValidationError as invalid:
        detail = "; ".join(error["msg"] for error in invalid.errors())
        return _error(ErrorInfo.of(ErrorCode.INVALID_INPUT).saying(f"Not valid: {detail}"))
    content = answer.model_dump(mode="json", by_alias=True)
    text = TextContent(type="text", text=answer.model_dump_json(by_alias=True))
    return CallToolResult(content=[text], structured_content=content)


def _error(info: ErrorInfo) -> CallToolResult:
    error = ToolError(code=info.code, message=info.message, hint=info.hint)
    text = TextContent(type="text", text=error.model_dump_json())
    return CallToolResult(
        content=[text], structured_content=error.model_dump(mode="json"), is_error=True
    )


class AgentTokenGate:
    """Lets through a request with a live agent token, the caller left in its scope; anything
    else is a 401 problem, before the SDK sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        container: Container = request.app.state.container
        given = request.headers.get("authorization", "")
        scheme, _, text = given.partition(" ")
        principal = await agent_tokens.principal_of(text.strip(), store=container.agent_tokens)
        if scheme.lower() != "bearer" or principal is None:
            response = problem(401, _refusal(text))
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        await self._app({**scope, _PRINCIPAL: principal}, receive, send)


def _refusal(text: str) -> ErrorInfo:
    if text.startswith("mbk_"):
        return NOT_AN_AGENT_TOKEN
    return ErrorInfo.of(ErrorCode.UNAUTHORIZED).saying(
        "A valid agent token is required.", NOT_AN_AGENT_TOKEN.hint
    )


def mount(app: FastAPI) -> Callable[[], AbstractAsyncContextManager[Any]]:
    """Serve the MCP server at ``/mcp`` of ``app``; answers what the app's lifespan must run
    around its requests (the SDK's session manager, which serves every request's task)."""
    server = build_server()
    # Host/Origin checks guard an unauthenticated local server from DNS rebinding; this one
    # needs a Bearer token, which a rebinding page cannot send, and is reached by any name.
    server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    manager = server.session_manager
    endpoint = AgentTokenGate(StreamableHTTPASGIApp(manager))
    app.router.routes.append(Route(PATH, endpoint=endpoint, methods=["GET", "POST", "DELETE"]))
    return manager.run
