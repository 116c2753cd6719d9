"""NatsSendPolicy: asks policy whether a send may go (``rpc.policy.send.authorize``).

No answer is never a yes: a policy service that is down makes the send wait and retry.
"""

from __future__ import annotations

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from mailbridge.shared.bus import NatsBus
from mailbridge.shared.errors import ErrorCode, RetryableError
from mailbridge.shared.messages import AuthorizeSend, SendAuthorization


class NatsSendPolicy:
    def __init__(self, bus: NatsBus, timeout: float) -> None:
        self._bus, self._timeout = bus, timeout

    async def authorize(self, request: AuthorizeSend) -> SendAuthorization:
        try:
            return await self._bus.request(request, SendAuthorization, self._timeout)
        except (NoRespondersError, NatsTimeoutError, TimeoutError) as exc:
            raise RetryableError(ErrorCode.INTERNAL, "policy did not answer.") from exc
