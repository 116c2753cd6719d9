"""config-api's HTTP routes: decode, call a handler, answer. Errors become problem+json."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, WithJsonSchema

from mailbridge.config_api import handlers, handlers_send
from mailbridge.config_api.adapters.live import Audience, Cursor, LiveStatusFeed, sse
from mailbridge.config_api.bootstrap import Container
from mailbridge.config_api.domain import versions
from mailbridge.config_api.domain.email_config import (
    AgentIn,
    AgentView,
    EmailConfigIn,
    EmailConfigView,
)
from mailbridge.config_api.domain.outgoing import (
    MAX_REQUEST_BYTES,
    MAX_SEND_REQUEST_BYTES,
    OutgoingMessageIn,
    SendStatus,
    SendView,
)
from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import Caller
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.problems import responses as problems
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages import CheckResult, ConnectionTested
from mailbridge.shared.presets import PRESETS, Preset

IfMatch = Annotated[
    str | None,
    # documented as what versions.parse_if_match accepts; anything else is answered 422
    WithJsonSchema(
        {"type": "string", "pattern": r'^(\*|(W/)?"[0-9]{1,9}")$', "examples": ['"3"', "*"]}
    ),
    Header(description="an ETag from GET; `*` for any version"),
]
CommandId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,200}$")]
ID_PATTERN = r"^[A-Za-z0-9_\-:@+=]{1,200}$"  # what a NATS subject's id token may be
AgentId = Annotated[str, Path(pattern=ID_PATTERN, examples=[examples.AGENT_ID])]


async def container(request: Request) -> Container:  # async: no threadpool hop per request
    found: Container = request.app.state.container
    return found


Deps = Annotated[Container, Depends(container)]

router = APIRouter(prefix="/bridge", max_body_size=MAX_REQUEST_BYTES)  # sends: their own

ETAG = {
    "ETag": {"description": "the config's version, for `If-Match`", "schema": {"type": "string"}}
}


@router.put(
    "/agents/{agent_id}",
    tags=["agents"],
    summary="Register or update an agent",
    responses={
        200: json_answer("The agent as stored.", examples.AGENT),
        **problems(401, 404, 422),
    },
)
async def put_agent(agent_id: AgentId, agent: AgentIn, deps: Deps, caller: Caller) -> AgentView:
    """Creates the agent in ``org_id`` or updates it; an org key may register only its own
    org's agents (422 otherwise), and another org's existing agent is answered 404."""
    await handlers.register_agent(agent_id, agent, repo=deps.repo, principal=caller)
    return AgentView(agent_id=agent_id, **agent.model_dump())


@router.get(
    "/agents/{agent_id}/email-config",
    tags=["email-config"],
    summary="Read an agent's email configuration and status",
    responses={
        200: {
            **json_answer(
                "The configuration without secrets.",
                examples.CONNECTED,
                examples.INHERITED_APP,
                examples.IN_ERROR,
                examples.NOT_CONNECTED,
            ),
            "headers": ETAG,
        },
        **problems(401, 404, 422),
    },
)
async def get_email_config(
    agent_id: AgentId, deps: Deps, caller: Caller, response: Response
) -> EmailConfigView:
    """The config without secrets, the status badge, the last error and the last test, and the
    banners: the OAuth app the agent uses (`inherited` from its org or not) and its client org.
    When the policy service does not answer within a second, the banners are null."""
    view = await handlers.get_email_config(
        agent_id, repo=deps.repo, principal=caller, policy=deps.policy
    )
    response.headers["ETag"] = versions.etag(view.version)
    return view


@router.put(
    "/agents/{agent_id}/email-config",
    tags=["email-config"],
    summary="Save an agent's email configuration",
    responses={
        200: {
            **json_answer(
                "The configuration as saved, status `configured` (or `awaiting_authorization`).",
                examples.SAVED,
            ),
            "headers": ETAG,
        },
        **problems(401, 404, 412, 422, 503),
    },
)
async def put_email_config(
    agent_id: AgentId,
    body: Annotated[EmailConfigIn, Body()],
    deps: Deps,
    caller: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> EmailConfigView:
    """Save; an omitted secret keeps the stored one. ``If-Match`` guards against lost updates.
    A Microsoft or Google config without an app of its own uses its org's shared app (422 when the
    org has none for that provider)."""
    view = await handlers.save_email_config(
        agent_id,
        body,
        repo=deps.repo,
        sealer=deps.sealer,
        principal=caller,
        policy=deps.policy,
        expected_version=versions.parse_if_match(if_match),
    )
    response.headers["ETag"] = versions.etag(view.version)
    return view


@router.delete(
    "/agents/{agent_id}/email-config",
    tags=["email-config"],
    summary="Disconnect an agent's mailbox",
    responses={
        200: json_answer("The agent, now `not_connected`.", examples.NOT_CONNECTED),
        **problems(401, 404, 412, 422),
    },
)
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


@router.get(
    "/email-presets",
    tags=["email-config"],
    summary="List the IMAP/SMTP presets",
    responses={
        200: json_answer("Every preset, `custom` last.", examples.PRESET_LIST),
        **problems(401),
    },
)
async def email_presets(_: Caller) -> list[Preset]:
    """IMAP/SMTP presets: Microsoft 365, Google, Yahoo, Zoho by region, Fastmail, iCloud, custom."""
    return list(PRESETS)


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
        **problems(401, 404, 409, 422, 504),
    },
)
async def test_email_config(agent_id: AgentId, deps: Deps, caller: Caller) -> dict[str, Any]:
    """Asks a mail-worker to log in to IMAP and SMTP (or the provider's API) and waits for it."""
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
    agent_id: AgentId, deps: Deps, caller: Caller, last_event_id: LastEventId = None
) -> StreamingResponse:
    """Server-Sent Events: a ``snapshot``, then ``status`` changes, ``test_result``s and ``policy``
    changes (the org's OAuth apps, the client org) as they happen. Reconnect with
    ``Last-Event-ID`` to resume without missing one."""
    agent, view = await handlers.agent_and_email_config(
        agent_id, repo=deps.repo, principal=caller, policy=deps.policy
    )
    first = sse(view.model_dump_json(), event="snapshot")
    feed = LiveStatusFeed(deps.broker.connection, deps.settings.sse_heartbeat_seconds)
    audience = Audience(agent_id, agent.org_id, agent.client_org_id)
    return StreamingResponse(
        feed.events(audience, Cursor.parse(last_event_id), first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


IdempotencyKey = Annotated[
    str | None,
    Header(max_length=200, description="the same key returns the same command_id; sent once"),
]


@router.post(
    "/agents/{agent_id}/messages",
    tags=["messages"],
    status_code=202,
    summary="Send a message (or a reply)",
    max_body_size=MAX_SEND_REQUEST_BYTES,
    responses={
        202: json_answer("Queued for a mail-worker; follow it with GET.", examples.QUEUED),
        **problems(401, 404, 409, 413, 422),
    },
)
async def send_message(
    agent_id: AgentId,
    message: OutgoingMessageIn,
    deps: Deps,
    caller: Caller,
    idempotency_key: IdempotencyKey = None,
) -> SendView:
    """Send (or reply, with ``in_reply_to``) through a mail-worker; follow it with GET."""
    command_id = await handlers_send.submit_message(
        agent_id, message, idempotency_key,
        repo=deps.repo, ledger=deps.ledger, content=deps.content, principal=caller,
    )  # fmt: skip
    return SendView(command_id=command_id, status=SendStatus.QUEUED)


@router.get(
    "/agents/{agent_id}/messages/{command_id}",
    tags=["messages"],
    summary="Where a send stands",
    responses={
        200: json_answer(
            "The send's status; `message_id` once sent, `error` once failed or blocked.",
            examples.SENT,
            examples.BLOCKED,
        ),
        **problems(401, 404, 422),
    },
)
async def get_message(
    agent_id: AgentId, command_id: CommandId, deps: Deps, caller: Caller
) -> SendView:
    """``queued``, ``sent``, ``failed``, ``blocked`` or ``unknown`` (never retried blindly)."""
    return await handlers_send.get_send(
        agent_id, command_id, repo=deps.repo, ledger=deps.ledger, principal=caller
    )
