"""NatsTokenSource: asks the oauth-broker for an agent's API access token over rpc.

The token lives only in memory for the call it is asked for; the broker keeps and refreshes it.
"""

from __future__ import annotations

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import SecretStr

from mailbridge.mail_worker.domain.classify import TEMPORARY
from mailbridge.mail_worker.ports import TokenGrant
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.errors import (
    ErrorCode,
    ErrorInfo,
    MailbridgeError,
    PermanentError,
    RetryableError,
)
from mailbridge.shared.messages import AccessTokenReply, GetAccessToken, TokenResource


class NatsTokenSource:
    def __init__(self, bus: NatsBus, timeout: float) -> None:
        self._bus, self._timeout = bus, timeout

    async def access_token(
        self,
        agent_id: str,
        *,
        refused: SecretStr | None = None,
        resource: TokenResource = TokenResource.API,
    ) -> SecretStr:
        """``refused``: the token the provider refused, which the broker then refreshes once;
        ``resource``: the API's token, or the mail token of IMAP/SMTP XOAUTH2."""
        request = GetAccessToken(agent_id=agent_id, resource=resource, refused=refused)
        return (await self._asked(request)).token

    async def grant(
        self,
        agent_id: str,
        *,
        refused: SecretStr | None = None,
        resource: TokenResource = TokenResource.API,
    ) -> TokenGrant:
        return await self._asked(
            GetAccessToken(agent_id=agent_id, resource=resource, refused=refused)
        )

    async def _asked(self, request: GetAccessToken) -> TokenGrant:
        try:
            reply = await self._bus.request(request, AccessTokenReply, self._timeout)
        except (NoRespondersError, NatsTimeoutError, TimeoutError) as exc:
            raise RetryableError(
                ErrorCode.PROVIDER_UNAVAILABLE, "The oauth-broker did not answer."
            ) from exc
        if reply.error is not None:
            raise broker_refusal(reply.error)
        if reply.access_token is None:
            raise PermanentError(ErrorCode.INTERNAL, "The oauth-broker answered no token.")
        return TokenGrant(reply.access_token, tuple(reply.scopes))


def broker_refusal(error: ErrorInfo) -> MailbridgeError:
    """The broker's error as it said it: retried later when the provider was only busy or down."""
    kind = RetryableError if error.code in TEMPORARY else PermanentError
    return kind.explained(error)
