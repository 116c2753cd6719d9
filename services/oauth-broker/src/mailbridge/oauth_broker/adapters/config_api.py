"""The agent's OAuth app, asked of config-api (which asks policy for an org's shared app)."""

from __future__ import annotations

import nats.errors

from mailbridge.shared.bus import NatsBus
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.messages import GetOAuthApp, OAuthAppReply

_NO_ANSWER = (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError)


class NatsAppSource:
    def __init__(self, bus: NatsBus, timeout: float) -> None:
        self._bus, self._timeout = bus, timeout

    async def app_of(self, agent_id: str) -> OAuthAppReply:
        """The app with its secret; a reply without one raises its error."""
        try:
            reply = await self._bus.request(
                GetOAuthApp(agent_id=agent_id), OAuthAppReply, self._timeout
            )
        except _NO_ANSWER as exc:
            raise MailbridgeError(ErrorCode.INTERNAL, "config-api did not answer.") from exc
        if reply.app is None:
            if reply.error is not None:
                raise MailbridgeError.explained(reply.error)
            raise MailbridgeError(ErrorCode.NOT_CONFIGURED)
        return reply
