"""Reading an agent's mailbox on demand, through a mail-worker: a folder newest first, one
message (parsed, or its RFC 822 bytes), and marking one seen."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import Path, Query, Response

from mailbridge.config_api.domain.mail_views import MessagePage, MessageView
from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import CallerOrAgentToken
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.http.deps import AgentId, MailDep, RepoDep, resource_router
from mailbridge.config_api.entrypoints.problems import responses as problems
from mailbridge.config_api.handlers import reading
from mailbridge.shared.messages import GetMessage, ListMessages, MarkSeen
from mailbridge.shared.messages.reading import (
    FOLDER_MAX_CHARS,
    MAX_LIST_LIMIT,
    MESSAGE_REF_PATTERN,
)

router = resource_router(prefix="/bridge")

Folder = Annotated[
    str,
    Query(min_length=1, max_length=FOLDER_MAX_CHARS, description="the folder's name, as listed"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT, description="messages on this page")]
Cursor = Annotated[
    str | None,
    Query(pattern=r"^\d{1,10}\.\d{1,10}$", description="`next_cursor` of the previous page"),
]
MessageRef = Annotated[
    str, Path(pattern=MESSAGE_REF_PATTERN, description="a `message_ref` from a listed page")
]
RAW = "message/rfc822"


@router.get(
    "/agents/{agent_id}/mail/messages",
    tags=["mail"],
    summary="List a folder, newest first",
    responses={
        200: json_answer("A page of envelopes, newest first.", examples.PAGE),
        **problems(401, 404, 409, 422, 502, 503),
    },
)
async def list_messages(
    agent_id: AgentId,
    repo: RepoDep,
    mail: MailDep,
    caller: CallerOrAgentToken,
    folder: Folder = "INBOX",
    limit: Limit = 20,
    cursor: Cursor = None,
) -> MessagePage:
    """A page of envelopes (from, to, subject, date, size, seen), never bodies; nothing is
    marked seen. The next page, older, from ``next_cursor``."""
    request = ListMessages(agent_id=agent_id, folder=folder, limit=limit, cursor=cursor)
    reply = await reading.list_messages(request, repo=repo, mail=mail, principal=caller)
    return MessagePage.of(reply)


@router.get(
    "/agents/{agent_id}/mail/messages/{message_ref}",
    tags=["mail"],
    summary="Read one message",
    response_model=MessageView,  # or, raw, the bytes themselves
    responses={
        200: {
            "content": {
                **json_answer("The message, parsed.", examples.READ)["content"],
                RAW: {
                    "schema": {"type": "string", "format": "binary"},
                    "example": examples.RAW_MESSAGE,
                },
            }
        },
        **problems(401, 404, 409, 413, 422, 502, 503),
    },
)
async def get_message(
    agent_id: AgentId,
    message_ref: MessageRef,
    repo: RepoDep,
    mail: MailDep,
    caller: CallerOrAgentToken,
    raw: Annotated[bool, Query(description=f"answer its RFC 822 bytes ({RAW})")] = False,
) -> MessageView | Response:
    """The message parsed as in ``message.received`` (text, HTML capped, attachments described),
    or with ``raw=true`` its bytes; reading does not mark it seen."""
    request = GetMessage(agent_id=agent_id, message_ref=message_ref, raw=raw)
    reply = await reading.get_message(request, repo=repo, mail=mail, principal=caller)
    if raw and reply.raw_base64 is not None:
        return Response(base64.b64decode(reply.raw_base64), media_type=RAW)
    return MessageView.of(reply)


@router.post(
    "/agents/{agent_id}/mail/messages/{message_ref}/seen",
    tags=["mail"],
    status_code=204,
    summary="Mark one message seen",
    responses=problems(401, 404, 409, 422, 502, 503),
)
async def mark_seen(
    agent_id: AgentId,
    message_ref: MessageRef,
    repo: RepoDep,
    mail: MailDep,
    caller: CallerOrAgentToken,
) -> Response:
    """Flag it ``\\Seen`` in the mailbox, as a mail client does once it was read."""
    request = MarkSeen(agent_id=agent_id, message_ref=message_ref)
    await reading.mark_seen(request, repo=repo, mail=mail, principal=caller)
    return Response(status_code=204)
