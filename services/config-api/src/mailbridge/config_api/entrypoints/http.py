"""config-api's HTTP routes: decode, call a handler, answer. Errors become problem+json."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from mailbridge.config_api import handlers
from mailbridge.config_api.adapters.live import Cursor, LiveStatusFeed, sse
from mailbridge.config_api.bootstrap import Container
from mailbridge.config_api.domain import versions
from mailbridge.config_api.domain.email_config import (
    AgentIn,
    AgentView,
    EmailConfigIn,
    EmailConfigView,
)
from mailbridge.config_api.domain.outgoing import OutgoingMessageIn, SendStatus, SendView
from mailbridge.config_api.entrypoints.auth import Caller
from mailbridge.shared.messages import ConnectionTested
from mailbridge.shared.presets import PRESETS, Preset

IfMatch = Annotated[str | None, Header(description="an ETag from GET; `*` for any version")]
CommandId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,200}$")]
AgentId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-:@+=]{1,200}$", examples=["agent-42"])]


def container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


Deps = Annotated[Container, Depends(container)]

router = APIRouter(prefix="/bridge")


@router.put("/agents/{agent_id}", tags=["agents"])
async def put_agent(agent_id: AgentId, agent: AgentIn, deps: Deps, caller: Caller) -> AgentView:
    await handlers.register_agent(agent_id, agent, repo=deps.repo, principal=caller)
    return AgentView(agent_id=agent_id, **agent.model_dump())


@router.get("/agents/{agent_id}/email-config", tags=["email-config"])
async def get_email_config(
    agent_id: AgentId, deps: Deps, caller: Caller, response: Response
) -> EmailConfigView:
    """The config without secrets, the status badge, the last error and the last test."""
    view = await handlers.get_email_config(agent_id, repo=deps.repo, principal=caller)
    response.headers["ETag"] = versions.etag(view.version)
    return view


@router.put("/agents/{agent_id}/email-config", tags=["email-config"])
async def put_email_config(
    agent_id: AgentId,
    body: Annotated[EmailConfigIn, Body()],
    deps: Deps,
    caller: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> EmailConfigView:
    """Save; an omitted secret keeps the stored one. ``If-Match`` guards against lost updates."""
    view = await handlers.save_email_config(
        agent_id,
        body,
        repo=deps.repo,
        sealer=deps.sealer,
        principal=caller,
        expected_version=versions.parse_if_match(if_match),
    )
    response.headers["ETag"] = versions.etag(view.version)
    return view


@router.delete("/agents/{agent_id}/email-config", tags=["email-config"])
async def delete_email_config(
    agent_id: AgentId, deps: Deps, caller: Caller, if_match: IfMatch = None
) -> EmailConfigView:
    """Disconnect: secrets erased, OAuth grant revoked, status ``not_connected``."""
    return await handlers.delete_email_config(
        agent_id,
        repo=deps.repo,
        principal=caller,
        revoker=deps.revoker,
        expected_version=versions.parse_if_match(if_match),
    )


@router.get("/email-presets", tags=["email-config"])
async def email_presets(_: Caller) -> list[Preset]:
    """IMAP/SMTP presets: Microsoft 365, Google, Yahoo, Zoho by region, Fastmail, iCloud, custom."""
    return list(PRESETS)


@router.post("/agents/{agent_id}/email-config/test", tags=["email-config"])
async def test_email_config(agent_id: AgentId, deps: Deps, caller: Caller) -> dict[str, Any]:
    result = await handlers.run_connection_test(
        agent_id,
        principal=caller,
        repo=deps.repo,
        commands=deps.bus,
        results=deps.results,
        clock=deps.clock,
        timeout=deps.settings.test_timeout_seconds,
    )
    return connection_test_answer(result)


def connection_test_answer(result: ConnectionTested) -> dict[str, Any]:
    """SPEC §4: ``{ok, email, inbox_total, unread, checks, latency_ms}`` or ``{ok, error}``."""
    fields = {"ok", "email", "inbox_total", "unread", "checks", "latency_ms", "error", "command_id"}
    return result.model_dump(mode="json", include=fields)


LastEventId = Annotated[str | None, Header(description="resume after this SSE event id")]


@router.get(
    "/agents/{agent_id}/email-config/events",
    tags=["email-config"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def email_config_events(
    agent_id: AgentId, deps: Deps, caller: Caller, last_event_id: LastEventId = None
) -> StreamingResponse:
    """Server-Sent Events: a ``snapshot``, then ``status`` changes and ``test_result``s as they
    happen. Reconnect with ``Last-Event-ID`` to resume without missing one."""
    view = await handlers.get_email_config(agent_id, repo=deps.repo, principal=caller)
    first = sse(view.model_dump_json(), event="snapshot")
    feed = LiveStatusFeed(deps.broker.connection, deps.settings.sse_heartbeat_seconds)
    return StreamingResponse(
        feed.events(agent_id, Cursor.parse(last_event_id), first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


IdempotencyKey = Annotated[
    str | None,
    Header(max_length=200, description="the same key returns the same command_id; sent once"),
]


@router.post("/agents/{agent_id}/messages", tags=["messages"], status_code=202)
async def send_message(
    agent_id: AgentId,
    message: OutgoingMessageIn,
    deps: Deps,
    caller: Caller,
    idempotency_key: IdempotencyKey = None,
) -> SendView:
    """Send (or reply, with ``in_reply_to``) through a mail-worker; follow it with GET."""
    command_id = await handlers.submit_message(
        agent_id, message, idempotency_key, repo=deps.repo, ledger=deps.ledger, principal=caller
    )
    return SendView(command_id=command_id, status=SendStatus.QUEUED)


@router.get("/agents/{agent_id}/messages/{command_id}", tags=["messages"])
async def get_message(
    agent_id: AgentId, command_id: CommandId, deps: Deps, caller: Caller
) -> SendView:
    """``queued``, ``sent``, ``failed``, ``blocked`` or ``unknown`` (never retried blindly)."""
    return await handlers.get_send(
        agent_id, command_id, repo=deps.repo, ledger=deps.ledger, principal=caller
    )


health = APIRouter(tags=["health"])


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get("/readyz")
async def readyz(deps: Deps) -> JSONResponse:
    checks = await deps.readiness()
    ready = all(checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)
