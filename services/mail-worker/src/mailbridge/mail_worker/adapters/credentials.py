"""NatsCredentialsSource: asks config-api for an agent's opened credentials over rpc."""

from __future__ import annotations

import time

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


class CachedCredentials:
    """Credentials kept for ``ttl_seconds``, so a burst of sends costs one rpc, not one each.
    A saved or deleted config drops its entry at once (every replica hears those events)."""

    def __init__(self, inner: NatsCredentialsSource, ttl_seconds: float = 30.0) -> None:
        self._inner, self._ttl = inner, ttl_seconds
        self._entries: dict[str, tuple[float, Credentials]] = {}

    async def get(self, agent_id: str) -> Credentials:
        cached = self._entries.get(agent_id)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        credentials = await self._inner.get(agent_id)
        self._entries[agent_id] = (time.monotonic(), credentials)
        return credentials

    @property
    def uncached(self) -> NatsCredentialsSource:
        """For connection tests: they must see a password saved a moment ago."""
        return self._inner

    def forget(self, agent_id: str) -> None:
        self._entries.pop(agent_id, None)
