"""NatsGrantRevoker: asks oauth-broker to revoke a grant; never blocks a disconnect."""

from __future__ import annotations

import logging

from mailbridge.shared.bus import NatsBus
from mailbridge.shared.messages import GrantRevocationReply, RevokeGrant

log = logging.getLogger(__name__)


class NatsGrantRevoker:
    def __init__(self, bus: NatsBus, timeout: float = 5.0) -> None:
        self._bus, self._timeout = bus, timeout

    async def revoke(self, agent_id: str) -> GrantRevocationReply | None:
        try:
            reply = await self._bus.request(
                RevokeGrant(agent_id=agent_id), GrantRevocationReply, self._timeout
            )
        except Exception:  # the config is gone either way; the grant dies with its tokens
            log.warning("oauth-broker did not revoke the grant of %s", agent_id, exc_info=True)
            return None
        if not reply.revoked:
            log.warning("the grant of %s was not revoked: %s", agent_id, reply.error)
        return reply
