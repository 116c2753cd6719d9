"""Sending (and replying) over HTTP, where a send stands, and deciding a held one."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query

from mailbridge.config_api.domain.outgoing import (
    MAX_SEND_REQUEST_BYTES,
    Decision,
    OutgoingMessageIn,
    SendList,
    SendStatus,
    SendView,
)
from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import Caller, CallerOrAgentToken
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.http.deps import (
    AgentId,
    ApprovalsDep,
    CommandId,
    ContentDep,
    LedgerDep,
    PolicyDep,
    RepoDep,
    resource_router,
)
from mailbridge.config_api.entrypoints.problems import responses as problems
from mailbridge.config_api.handlers import approvals, sends

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
        **problems(401, 404, 409, 413, 422, 503),
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
    """``queued``, ``sent``, ``failed``, ``blocked``, ``unknown`` (never retried blindly),
    ``held`` (waiting for approval) or ``rejected``."""
    return await sends.get_send(agent_id, command_id, repo=repo, ledger=ledger, principal=caller)


@router.get(
    "/agents/{agent_id}/messages",
    tags=["messages"],
    summary="An agent's sends, e.g. those waiting for approval (`?status=held`)",
    responses={
        200: json_answer("Oldest first.", SendList(messages=[examples.HELD])),
        **problems(401, 404, 422),
    },
)
async def list_messages(
    agent_id: AgentId,
    repo: RepoDep,
    ledger: LedgerDep,
    caller: CallerOrAgentToken,
    status: Annotated[SendStatus | None, Query(description="only sends in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SendList:
    return await approvals.list_sends(
        agent_id, status, limit, repo=repo, ledger=ledger, principal=caller
    )


_DECIDED = {
    200: json_answer(
        "The send as it stands now; one decided already this way is answered unchanged.",
        examples.APPROVED,
        examples.EXPIRED,
    ),
    **problems(401, 404, 409, 422),
}


def _decision_route(verb: str, wanted: Decision, summary: str, doc: str) -> None:
    """``POST …/messages/{command_id}/{verb}``: one route per decision, the same body."""

    @router.post(
        f"/agents/{{agent_id}}/messages/{{command_id}}/{verb}",
        tags=["messages"], summary=summary, responses=_DECIDED, name=f"{verb}_message",
        description=doc,
    )  # fmt: skip
    async def decide(
        agent_id: AgentId, command_id: CommandId, repo: RepoDep, ledger: LedgerDep,
        approvals_: ApprovalsDep, policy: PolicyDep, content: ContentDep, caller: Caller,
    ) -> SendView:  # fmt: skip
        return await approvals.decide(
            agent_id, command_id, wanted, repo=repo, ledger=ledger, approvals=approvals_,
            policy=policy, content=content, principal=caller,
        )  # fmt: skip


_decision_route(
    "approve",
    Decision.APPROVED,
    "Approve a held send: it is queued again and goes out once",
    "Its quota is reserved now; over the limit it stays held (409 `send_limit_reached`).",
)
_decision_route(
    "reject",
    Decision.REJECTED,
    "Reject a held send: it ends `rejected` and is never sent",
    "A rejected send is final: approving it afterwards is 409 `not_held`.",
)
