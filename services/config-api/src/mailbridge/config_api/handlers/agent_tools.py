"""The MCP tools' use cases beyond the routes' own handlers, which they call: the mailbox's badge,
a send that waits a little for its outcome, and a reply built from the original, read on demand.

A send goes exactly the way ``POST …/messages`` goes (``sends.submit_message``: the ledger, the
outbox, a mail-worker, policy), so whatever holds an HTTP send holds this one too. Its outcome is
read back from the ledger, the one record every replica settles, until it is no longer queued or
the wait is over; then the agent follows it with ``GET …/messages/{command_id}``.
"""

from __future__ import annotations

import asyncio

from mailbridge.config_api.domain.agent_tools import (
    UNANSWERABLE,
    MailboxStatusView,
    ReplyIn,
    reply_to,
)
from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.outgoing import OutgoingMessageIn, SendStatus, SendView
from mailbridge.config_api.handlers import email_config, reading, sends
from mailbridge.config_api.ports import ConfigRepository, MailReader, PolicyService, SendLedger
from mailbridge.shared.content import ContentStore
from mailbridge.shared.errors import MailbridgeError
from mailbridge.shared.messages import GetMessage

_FIRST_LOOK, _LONGEST_PAUSE = (
    0.05,
    0.5,
)  # seconds: a quick outcome is seen quickly, a slow one cheaply


async def mailbox_status(
    agent_id: str, *, repo: ConfigRepository, policy: PolicyService, principal: Principal
) -> MailboxStatusView:
    view = await email_config.get_email_config(
        agent_id, repo=repo, principal=principal, policy=policy
    )
    return MailboxStatusView.of(view)


async def send_and_wait(
    agent_id: str,
    message: OutgoingMessageIn,
    *,
    repo: ConfigRepository,
    ledger: SendLedger,
    content: ContentStore,
    principal: Principal,
    wait_seconds: float,
) -> SendView:
    """Queue the send as HTTP does; its status once settled, or ``queued`` after the wait."""
    command_id = await sends.submit_message(
        agent_id, message, None, repo=repo, ledger=ledger, content=content, principal=principal
    )
    queued = SendView(command_id=command_id, status=SendStatus.QUEUED)
    try:
        async with asyncio.timeout(wait_seconds):
            return await _settled(agent_id, command_id, ledger)
    except TimeoutError:
        return (await ledger.find(agent_id, command_id)) or queued


async def _settled(agent_id: str, command_id: str, ledger: SendLedger) -> SendView:
    pause = _FIRST_LOOK
    while True:
        found = await ledger.find(agent_id, command_id)
        if found is not None and found.status is not SendStatus.QUEUED:
            return found
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)


async def reply_message(
    agent_id: str, reply: ReplyIn, *, repo: ConfigRepository, mail: MailReader, principal: Principal
) -> OutgoingMessageIn:
    """The reply to a message of the agent's mailbox, addressed from the original."""
    request = GetMessage(agent_id=agent_id, message_ref=reply.message_ref)
    fetched = await reading.get_message(request, repo=repo, mail=mail, principal=principal)
    if fetched.message is None:
        raise MailbridgeError.explained(UNANSWERABLE)
    return reply_to(fetched.message, reply)
