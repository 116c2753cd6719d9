"""Sending (and replying) over HTTP, and where a send stands."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from mailbridge.config_api.domain.outgoing import (
    MAX_SEND_REQUEST_BYTES,
    OutgoingMessageIn,
    SendStatus,
    SendView,
)
from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import CallerOrAgentToken
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.http.deps import (
    AgentId,
    CommandId,
    ContentDep,
    LedgerDep,
    RepoDep,
    resource_router,
)
from mailbridge.config_api.entrypoints.problems import responses as problems
from mailbridge.config_api.handlers import sends

router = resource_router(prefix="/bridge")


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
    repo: RepoDep,
    ledger: LedgerDep,
    content: ContentDep,
    caller: CallerOrAgentToken,
    idempotency_key: IdempotencyKey = None,
) -> SendView:
    """Send (or reply, with ``in_reply_to``) through a mail-worker; follow it with GET."""
    command_id = await sends.submit_message(
        agent_id, message, idempotency_key,
        repo=repo, ledger=ledger, content=content, principal=caller,
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
    agent_id: AgentId,
    command_id: CommandId,
    repo: RepoDep,
    ledger: LedgerDep,
    caller: CallerOrAgentToken,
) -> SendView:
    """``queued``, ``sent``, ``failed``, ``blocked`` or ``unknown`` (never retried blindly)."""
    return await sends.get_send(agent_id, command_id, repo=repo, ledger=ledger, principal=caller)
