"""config-api's HTTP sends: queued under an Idempotency-Key, settled by the workers' events."""

from __future__ import annotations

from mailbridge.config_api.domain import audit
from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.outgoing import OutgoingMessageIn, SendStatus, SendView
from mailbridge.config_api.handlers.agents import load_agent, load_configured
from mailbridge.config_api.handlers.mailbox_status import record_mailbox_event
from mailbridge.config_api.ports import ConfigRepository, SendLedger
from mailbridge.shared.clock import Clock
from mailbridge.shared.content import ContentStore, offloaded
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.messages import MessageSendFailed, MessageSent, SendMessage


async def submit_message(
    agent_id: str,
    message: OutgoingMessageIn,
    idempotency_key: str | None,
    *,
    repo: ConfigRepository,
    ledger: SendLedger,
    content: ContentStore,
    principal: Principal,
) -> str:
    """Queue a send; the same Idempotency-Key returns the first send's command id. Large content
    goes to the content store first, so the command fits one NATS message."""
    await load_configured(agent_id, repo, principal)
    command = await offloaded(SendMessage(agent_id=agent_id, **message.model_dump()), content)
    requested = [audit.send_requested(command, principal)]
    command_id, fingerprint = await ledger.open(
        command, idempotency_key, message.fingerprint(), requested
    )
    if command_id != command.command_id and command.content_ref is not None:
        await content.delete(command.content_ref)  # a retry: the first send's content stands
    if fingerprint != message.fingerprint():
        raise MailbridgeError(
            ErrorCode.INVALID_INPUT, "Idempotency-Key reused for another message."
        )
    return command_id


async def get_send(
    agent_id: str,
    command_id: str,
    *,
    repo: ConfigRepository,
    ledger: SendLedger,
    principal: Principal,
) -> SendView:
    await load_agent(agent_id, repo, principal)
    found = await ledger.find(agent_id, command_id)
    if found is None:
        raise MailbridgeError(ErrorCode.NOT_FOUND, f"No send {command_id!r}.")
    return found


async def record_send_outcome(
    event: MessageSent | MessageSendFailed,
    *,
    repo: ConfigRepository,
    ledger: SendLedger,
    clock: Clock,
) -> None:
    if isinstance(event, MessageSent):
        await ledger.settle(event.command_id, SendStatus.SENT, event.message_id, None)
        return
    # the badge first: a client that sees the send failed then sees why on the badge too
    await record_mailbox_event(event, repo=repo, clock=clock)
    await ledger.settle(event.command_id, SendStatus(event.outcome.value), None, event.error)
