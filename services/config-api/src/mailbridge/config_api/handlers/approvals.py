"""Approval before sending, at the gateway: held sends recorded, listed, decided and expired.

An approval asks policy to let the send through (policy reserves its quota then) while the send's
row is locked, and queues the held command again, with its own ``command_id``, in the decision's
transaction: the worker's ledger and policy's reservation both key on that id, so however often
a person clicks approve, the send goes out once. A rejection or expiry queues nothing; the held
content is dropped once the decision has committed.
"""

from __future__ import annotations

from datetime import timedelta

from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.audit import actor_of
from mailbridge.config_api.domain.email_config import AgentIn
from mailbridge.config_api.domain.outgoing import Decision, SendList, SendStatus, SendView
from mailbridge.config_api.handlers.agents import load_agent
from mailbridge.config_api.ports import (
    Approvals,
    ConfigRepository,
    DecisionEffects,
    HeldSend,
    PolicyService,
    SendLedger,
)
from mailbridge.shared.clock import Clock, utc_now
from mailbridge.shared.content import ContentStore
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    ApproveSend,
    Message,
    MessageApproved,
    MessageHeld,
    MessageRejected,
)


async def record_hold(event: MessageHeld, *, approvals: Approvals) -> None:
    await approvals.hold(event)


async def list_sends(
    agent_id: str,
    status: SendStatus | None,
    limit: int,
    *,
    repo: ConfigRepository,
    ledger: SendLedger,
    principal: Principal,
) -> SendList:
    await load_agent(agent_id, repo, principal)
    return SendList(messages=await ledger.listed(agent_id, status, limit))


async def decide(
    agent_id: str,
    command_id: str,
    wanted: Decision,
    *,
    repo: ConfigRepository,
    ledger: SendLedger,
    approvals: Approvals,
    policy: PolicyService,
    content: ContentStore,
    principal: Principal,
) -> SendView:
    """Approve or reject a held send; the decision it has already is answered as it stands."""
    agent, _, _ = await load_agent(agent_id, repo, principal)
    actor = actor_of(principal)
    rejected: list[HeldSend] = []
    effects = (
        _approval(agent, actor, policy)
        if wanted is Decision.APPROVED
        else _rejection(actor, None, rejected)
    )
    decided = await approvals.decide(agent_id, command_id, wanted, actor, effects)
    found = await ledger.find(agent_id, command_id)
    if decided is None or found is None:
        raise MailbridgeError(ErrorCode.NOT_FOUND, f"No send {command_id!r}.")
    await _drop_content(content, rejected)
    return found


async def expire_holds(
    *, approvals: Approvals, content: ContentStore, clock: Clock, lifetime: timedelta
) -> int:
    """Reject the sends nobody decided within ``lifetime`` (``approval_expired``); how many."""
    expired: list[HeldSend] = []
    error = ErrorInfo.of(ErrorCode.APPROVAL_EXPIRED)
    await approvals.expire(clock.now() - lifetime, _rejection(None, error, expired))
    await _drop_content(content, expired)
    return len(expired)


def _approval(agent: AgentIn, actor: str, policy: PolicyService) -> DecisionEffects:
    async def effects(held: HeldSend) -> list[Message]:
        verdict = await policy.approve(
            ApproveSend(
                agent_id=held.agent_id, command_id=held.command_id, org_id=agent.org_id,
                client_org_id=agent.client_org_id,
            )
        )  # fmt: skip
        if not verdict.allowed:  # over the limit, say: it stays held
            raise MailbridgeError.explained(verdict.error or ErrorInfo.of(ErrorCode.INTERNAL))
        approved = MessageApproved(agent_id=held.agent_id, command_id=held.command_id, actor=actor)
        # issued again now: the worker's send latency counts from the approval, not the wait
        return [held.command.model_copy(update={"issued_at": utc_now()}), approved]

    return effects


def _rejection(
    actor: str | None, error: ErrorInfo | None, decided: list[HeldSend]
) -> DecisionEffects:
    """The rejected event; each send it rejects is noted in ``decided``, whose content goes."""

    async def effects(held: HeldSend) -> list[Message]:
        decided.append(held)
        ids = {"agent_id": held.agent_id, "command_id": held.command_id}
        return [MessageRejected(**ids, actor=actor, error=error)]

    return effects


async def _drop_content(content: ContentStore, sends: list[HeldSend]) -> None:
    """A rejected send's content is never needed again (the store's TTL takes what is missed)."""
    for held in sends:
        if held.command.content_ref is not None:
            await content.delete(held.command.content_ref)
