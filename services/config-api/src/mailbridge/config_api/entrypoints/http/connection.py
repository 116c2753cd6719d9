"""Where a mailbox stands: the connection test through a mail-worker, and the live status
(Server-Sent Events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import CallerOrSession
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.http.deps import (
    AgentId,
    ClockDep,
    CommandsDep,
    LiveDep,
    PolicyDep,
    RepoDep,
    ResultsDep,
    SettingsDep,
    resource_router,
)
from mailbridge.config_api.entrypoints.problems import responses as problems
from mailbridge.config_api.handlers import connection_test, email_config
from mailbridge.shared.clock import Clock
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages import CheckResult, ConnectionTested

router = resource_router(prefix="/bridge")


def connection_test_answer(result: ConnectionTested) -> dict[str, Any]:
    """SPEC §4: ``{ok, email, inbox_total, unread, checks, latency_ms}`` or ``{ok, error}``."""
    fields = {"ok", "email", "inbox_total", "unread", "checks", "latency_ms", "error", "command_id"}
    return result.model_dump(mode="json", include=fields)


class ConnectionTestAnswer(BaseModel):
    """A connection test's result: ``ok`` with the mailbox counts, or ``error`` with its hint."""

    # Every field is sent. The nullable ones have a default (so are not `required`) only because
    # FastAPI drops the nulls of documented examples, which would then not match the schema.
    ok: bool
    email: str | None = None
    inbox_total: int | None = None
    unread: int | None = None
    checks: dict[str, CheckResult] = Field(description="`imap` and `smtp`, or `api` and `send`")
    latency_ms: int
    error: ErrorInfo | None = None
    command_id: str


@router.post(
    "/agents/{agent_id}/email-config/test",
    tags=["email-config"],
    summary="Test the connection through a mail-worker",
    response_model=None,
    responses={
        200: {
            "model": ConnectionTestAnswer,
            **json_answer(
                "The test ran: `ok`, or the error that the status now shows.",
                connection_test_answer(examples.TEST_PASSED),
                connection_test_answer(examples.TEST_FAILED),
            ),
        },
        **problems(401, 403, 404, 409, 422, 504),
    },
)
async def test_email_config(
    agent_id: AgentId,
    repo: RepoDep,
    commands: CommandsDep,
    results: ResultsDep,
    clock: ClockDep,
    settings: SettingsDep,
    caller: CallerOrSession,
) -> dict[str, Any]:
    """Asks a mail-worker to log in to IMAP and SMTP (or the provider's API) and waits for it."""
    result = await connection_test.run_connection_test(
        agent_id,
        principal=caller,
        repo=repo,
        commands=commands,
        results=results,
        clock=clock,
        timeout=settings.test_timeout_seconds,
    )
    return connection_test_answer(result)


async def until(deadline: datetime, events: AsyncIterator[str], clock: Clock) -> AsyncIterator[str]:
    """``events`` up to ``deadline``, checked as each comes (heartbeats come while idle); then
    the feed is closed, which ends its subscriptions."""
    try:
        async for event in events:
            if clock.now() >= deadline:
                return
            yield event
    finally:
        if (close := getattr(events, "aclose", None)) is not None:
            await close()


LastEventId = Annotated[str | None, Header(description="resume after this SSE event id")]


@router.get(
    "/agents/{agent_id}/email-config/events",
    tags=["email-config"],
    summary="Follow status changes and test results (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "A `text/event-stream` that stays open.",
            "content": {"text/event-stream": {"example": examples.EVENT_STREAM}},
        },
        **problems(401, 404, 422),
    },
)
async def email_config_events(
    agent_id: AgentId,
    repo: RepoDep,
    policy: PolicyDep,
    live: LiveDep,
    clock: ClockDep,
    caller: CallerOrSession,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Server-Sent Events: a ``snapshot``, then ``status`` changes, ``test_result``s and ``policy``
    changes (the org's OAuth apps, the client org) as they happen. Reconnect with
    ``Last-Event-ID`` to resume without missing one. A stream opened with an Email tab session
    ends when that session does; the browser reconnects, with the session renewed or refused."""
    agent, view = await email_config.agent_and_email_config(
        agent_id, repo=repo, principal=caller, policy=policy
    )
    events = live.follow(agent_id, agent, last_event_id, view.model_dump_json())
    return StreamingResponse(
        events if caller.expires_at is None else until(caller.expires_at, events, clock),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
