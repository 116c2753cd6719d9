"""SASL XOAUTH2 for IMAP and SMTP: the initial response, the login, and what a refusal means.

A Google or Microsoft account reached over IMAP/SMTP (``Credentials.xoauth2``) logs in with
``base64("user=" user "\\x01auth=Bearer " token "\\x01\\x01")`` and a mail token from the
oauth-broker. A refused token is answered in one of two shapes: Gmail and Dovecot send a
challenge, base64 of a JSON object (``{"status","schemes","scope"}``; Dovecot's OAUTHBEARER
``{"status":"invalid_token"}``), which the client answers with an empty line before the final
``NO`` / ``535``; Microsoft sends no challenge, only ``NO AUTHENTICATE failed.`` / ``535 5.7.3``.

Only the challenge's fields decide, never a message's text: a missing scope
(``oauth_scope_missing``) when its ``status`` says so (RFC 6750 ``insufficient_scope``, HTTP
403) or its ``scope`` names provider scopes (URLs, as Gmail's ``https://mail.google.com/``; not
Dovecot's ``mail``) none of which the grant holds. Any other refusal is the token's: the broker
is asked once for a fresh one, saying which was refused, and the login tried again; refused again,
it is ``oauth_token_revoked`` (a grant the broker finds dead answers its own error).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

from mailbridge.mail_worker.domain.classify import TEMPORARY, refusal
from mailbridge.mail_worker.ports import TokenGrant
from mailbridge.shared.errors import ErrorCode, MailbridgeError, PermanentError
from mailbridge.shared.messages import Credentials, TokenResource

MAX_CHALLENGE_BYTES = 4096
_SCOPE_STATUSES = frozenset({"insufficient_scope", "403"})
# refusals that say nothing of the token: the server is busy, or the tenant turned SMTP AUTH off
_NOT_THE_TOKEN = TEMPORARY | {ErrorCode.SMTP_AUTH_DISABLED}


class MailTokenSource(Protocol):
    async def grant(
        self,
        agent_id: str,
        *,
        refused: SecretStr | None = None,
        resource: TokenResource = TokenResource.API,
    ) -> TokenGrant: ...


@dataclass(frozen=True)
class Refused:
    """A server's refusal of one XOAUTH2 attempt: how its reply reads as a password login's,
    and the challenge it sent first, if any."""

    password_code: ErrorCode
    challenge: bytes | None = None


Attempt = Callable[[str], Awaitable[Refused | None]]  # sends an initial response; None: logged in


def initial_response(user: str, token: str) -> str:
    """The XOAUTH2 initial client response, base64 as IMAP and SMTP send it."""
    raw = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
    return base64.b64encode(raw).decode("ascii")


def challenge_fields(challenge: bytes) -> dict[str, str]:
    """The fields of a refusal's base64 JSON challenge; ``{}`` for anything else."""
    if len(challenge) > MAX_CHALLENGE_BYTES:
        return {}
    try:
        parsed = json.loads(base64.b64decode(challenge.strip(), validate=True))
    except (ValueError, binascii.Error, RecursionError):  # also UnicodeDecodeError, JSON errors
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(k): str(v) for k, v in parsed.items() if isinstance(v, str | int)}


def refused_code(challenge: bytes | None, granted: tuple[str, ...] = ()) -> ErrorCode:
    """A refused token: a missing scope when the challenge's fields say so, else revoked."""
    fields = challenge_fields(challenge) if challenge else {}
    if fields.get("status", "").strip().lower() in _SCOPE_STATUSES:
        return ErrorCode.OAUTH_SCOPE_MISSING
    named = [scope for scope in fields.get("scope", "").split() if "://" in scope]
    held = {scope.lower() for scope in granted}
    if named and granted and not any(scope.lower() in held for scope in named):
        return ErrorCode.OAUTH_SCOPE_MISSING
    return ErrorCode.OAUTH_TOKEN_REVOKED


def login_refused(refused: Refused, detail: str, granted: tuple[str, ...] = ()) -> MailbridgeError:
    """A refused XOAUTH2 login: busy or limited servers (and a tenant without SMTP AUTH) stay
    so; any other refusal is the token's."""
    if refused.password_code in _NOT_THE_TOKEN:
        return refusal(refused.password_code, detail)
    return PermanentError(refused_code(refused.challenge, granted), detail)


class XOAuth2Login:
    """An account's XOAUTH2 login with the broker's mail token, refreshed once if refused."""

    def __init__(self, tokens: MailTokenSource | None) -> None:
        self._tokens = tokens

    async def log_in(self, credentials: Credentials, attempt: Attempt, detail: str) -> None:
        grant = await self._grant(credentials)
        refused = await attempt(self._response(credentials, grant))
        if refused is None:
            return
        error = login_refused(refused, detail, grant.scopes)
        if error.code is not ErrorCode.OAUTH_TOKEN_REVOKED:
            raise error
        fresh = await self._grant(credentials, refused=grant.token)
        if fresh.token.get_secret_value() == grant.token.get_secret_value():
            raise error  # the broker has none newer: the grant's token is the one refused
        refused = await attempt(self._response(credentials, fresh))
        if refused is not None:
            raise login_refused(refused, detail, fresh.scopes)

    async def _grant(
        self, credentials: Credentials, refused: SecretStr | None = None
    ) -> TokenGrant:
        if self._tokens is None or credentials.agent_id is None:
            raise PermanentError(ErrorCode.INTERNAL, "No mail token source for an XOAUTH2 login.")
        return await self._tokens.grant(
            credentials.agent_id, refused=refused, resource=TokenResource.MAIL
        )

    @staticmethod
    def _response(credentials: Credentials, grant: TokenGrant) -> str:
        return initial_response(
            credentials.username or credentials.email, grant.token.get_secret_value()
        )
