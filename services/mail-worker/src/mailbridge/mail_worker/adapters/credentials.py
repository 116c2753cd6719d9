"""NatsCredentialsSource: asks config-api for an agent's opened credentials over rpc."""

from __future__ import annotations

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from mailbridge.shared.bus import NatsBus
from mailbridge.shared.errors import ErrorCode, PermanentError, RetryableError
from mailbridge.shared.messages import Credentials, CredentialsReply, GetCredentials


class NatsCredentialsSource:
    def __init__(self, bus: NatsBus, timeout: float) -> None:
        self._bus, self._timeout = bus, timeout

    async def get(self, agent_id: str) -> Credentials:
        try:
            reply = await self._bus.request(
                GetCredentials(agent_id=agent_id), CredentialsReply, self._timeout
            )
        except (NoRespondersError, NatsTimeoutError, TimeoutError) as exc:
            raise RetryableError(ErrorCode.INTERNAL, "config-api did not answer.") from exc
        if reply.credentials is None:
            code = reply.error.code if reply.error else ErrorCode.INTERNAL
            raise PermanentError(code, "No credentials for this agent.")
        return reply.credentials
