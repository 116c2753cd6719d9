"""Config changes every replica hears (no queue group): a cached credential is dropped at once,
and a mailbox's watch (``watchers.py``) starts, restarts or stops within the second.

``no_reply``: these subjects are JetStream's, and a core subscriber would answer the publisher's
reply inbox (FastStream's default) with an empty body, racing the stream's ack: the publisher then
read the empty answer as a broken ack and retried.
"""

from __future__ import annotations

from faststream.nats import NatsBroker

from mailbridge.mail_worker.container import Container
from mailbridge.shared.messages import (
    AgentUpdated,
    EmailConfigDeleted,
    EmailConfigSaved,
    MailboxStatus,
    StatusChanged,
)


def register(broker: NatsBroker, c: Container) -> None:
    """A saved or deleted config, and a re-linked agent, drop the agent's cached credentials, so
    the next send reads the new password or the new org link that policy checks it against."""

    @broker.subscriber(EmailConfigSaved.subscription(), no_reply=True)
    async def config_saved(event: EmailConfigSaved) -> None:
        c.credential_cache.forget(event.agent_id)
        await c.watches.restart(event.agent_id)

    @broker.subscriber(EmailConfigDeleted.subscription(), no_reply=True)
    async def config_deleted(event: EmailConfigDeleted) -> None:
        c.credential_cache.forget(event.agent_id)
        await c.watches.stop_watching(event.agent_id)

    @broker.subscriber(AgentUpdated.subscription(), no_reply=True)
    async def agent_updated(event: AgentUpdated) -> None:
        c.credential_cache.forget(event.agent_id)
        await c.watches.restart(event.agent_id)

    @broker.subscriber(StatusChanged.subscription(), no_reply=True)
    async def status_changed(event: StatusChanged) -> None:
        """Watched while connected, as it is polled: the same rule for both."""
        if event.status is MailboxStatus.CONNECTED:
            await c.watches.offer(event.agent_id)
        else:
            await c.watches.stop_watching(event.agent_id)
