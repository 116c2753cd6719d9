"""Config changes every replica hears (no queue group): a cached credential is dropped at once."""

from __future__ import annotations

from faststream.nats import NatsBroker

from mailbridge.mail_worker.container import Container
from mailbridge.shared.messages import AgentUpdated, EmailConfigDeleted, EmailConfigSaved


def register(broker: NatsBroker, c: Container) -> None:
    """A saved or deleted config, and a re-linked agent, drop the agent's cached credentials, so
    the next send reads the new password or the new org link that policy checks it against."""

    @broker.subscriber(EmailConfigSaved.subscription())
    async def config_saved(event: EmailConfigSaved) -> None:
        c.credential_cache.forget(event.agent_id)

    @broker.subscriber(EmailConfigDeleted.subscription())
    async def config_deleted(event: EmailConfigDeleted) -> None:
        c.credential_cache.forget(event.agent_id)

    @broker.subscriber(AgentUpdated.subscription())
    async def agent_updated(event: AgentUpdated) -> None:
        c.credential_cache.forget(event.agent_id)
