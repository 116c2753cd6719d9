"""SASL XOAUTH2 for IMAP and SMTP: the initial response, and what a refusal means.

A Google or Microsoft account reached over IMAP/SMTP (``Credentials.xoauth2``) logs in with
``base64("user=" user "\\x01auth=Bearer " token "\\x01\\x01")`` and a mail token from the
oauth-broker. A refused token is answered in one of two shapes: Gmail and Dovecot send a
challenge, base64 of a JSON object (``{"status","schemes","scope"}``; Dovecot's OAUTHBEARER
``{"status":"invalid_token"}``), which the client answers with an empty line before the final
``NO`` / ``535``; Microsoft sends no challenge, only ``NO AUTHENTICATE failed.`` / ``535 5.7.3``.
Either way the token was refused (``oauth_token_revoked``), unless the challenge's ``status`` says
the token lacks a scope (RFC 6750 ``insufficient_scope``, HTTP 403): ``oauth_scope_missing``.
Only the challenge's fields decide, never a message's text.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Protocol

from pydantic import SecretStr

from mailbridge.mail_worker.domain.classify import TEMPORARY, refusal
from mailbridge.shared.errors import ErrorCode, MailbridgeError, PermanentError
from mailbridge.shared.messages import Credentials, TokenResource

MAX_CHALLENGE_BYTES = 4096
_SCOPE_STATUSES = frozenset({"insufficient_scope", "403"})
# refusals that say nothing of the token: the server is busy, or the tenant turned SMTP AUTH off
_NOT_THE_TOKEN = TEMPORARY | {ErrorCode.SMTP_AUTH_DISABLED}


class MailTokenSource(Protocol):
    async def access_token(
        self, agent_id: str, *, resource: TokenResource = TokenResource.API
    ) -> SecretStr: ...


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


def refused_code(challenge: bytes | None) -> ErrorCode:
    """A refused token: a missing scope when the challenge's status says so, else revoked."""
    status = challenge_fields(challenge).get("status", "") if challenge else ""
    if status.strip().lower() in _SCOPE_STATUSES:
        return ErrorCode.OAUTH_SCOPE_MISSING
    return ErrorCode.OAUTH_TOKEN_REVOKED


def login_refused(
    password_code: ErrorCode, challenge: bytes | None, detail: str
) -> MailbridgeError:
    """A refused XOAUTH2 login. ``password_code`` is how the reply reads as a password login's:
    busy or limited servers (and a tenant without SMTP AUTH) stay so; any other refusal is the
    token's."""
    if password_code in _NOT_THE_TOKEN:
        return refusal(password_code, detail)
    return PermanentError(refused_code(challenge), detail)


class XOAuth2Login:
    """The initial responses of an account's XOAUTH2 logins, with a fresh mail token each."""

    def __init__(self, tokens: MailTokenSource | None) -> None:
        self._tokens = tokens

    async def initial_response(self, credentials: Credentials) -> str:
        if self._tokens is None or credentials.agent_id is None:
            raise PermanentError(ErrorCode.INTERNAL, "No mail token source for an XOAUTH2 login.")
        token = await self._tokens.access_token(credentials.agent_id, resource=TokenResource.MAIL)
        return initial_response(credentials.username or credentials.email, token.get_secret_value())
