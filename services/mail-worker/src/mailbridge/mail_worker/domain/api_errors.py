"""Pure rules that turn a Gmail or Graph error answer into the SPEC §7 taxonomy.

Decided on the HTTP status and the error's code fields (Gmail's ``reason``s, Graph's ``code``),
never on its message: the providers reword those (OAUTH-FACTS §2.2, §2.4).
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from mailbridge.shared.errors import ErrorCode, ErrorInfo

_GMAIL_SCOPE_REASONS = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})
_GMAIL_RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_GRAPH_DENIED_CODES = frozenset({"ErrorAccessDenied", "Authorization_RequestDenied"})


class _Reason(BaseModel):
    reason: str = ""


class _GoogleError(BaseModel):
    errors: list[_Reason] = []
    details: list[_Reason] = []  # google.rpc.ErrorInfo carries the reason too


class _GraphError(BaseModel):
    code: str = ""


class _GoogleEnvelope(BaseModel):
    error: _GoogleError = _GoogleError()


class _GraphEnvelope(BaseModel):
    error: _GraphError = _GraphError()


def classify_gmail_error(status: int, body: object) -> ErrorCode:
    """A 403 is a missing scope or a rate limit: its reasons say which."""
    reasons = _gmail_reasons(body)
    if reasons & _GMAIL_SCOPE_REASONS:
        return ErrorCode.OAUTH_SCOPE_MISSING
    if reasons & _GMAIL_RATE_REASONS:
        return ErrorCode.PROVIDER_THROTTLED
    return _by_status(status)


MAILBOX_NOT_ON_GRAPH = ErrorInfo.of(ErrorCode.PROVIDER_UNAVAILABLE).saying(
    "Microsoft Graph does not serve this mailbox: it is inactive, soft-deleted, without an"
    " Exchange Online licence, or hosted on-premises.",
    "Give the user an Exchange Online licence, or connect the mailbox over IMAP and SMTP.",
)


def classify_graph_error(status: int, body: object) -> ErrorCode | ErrorInfo:
    """An ``ErrorInfo``: told precisely, and no retry will mend it."""
    code = _graph_code(body)
    if code == "MailboxNotEnabledForRESTAPI":
        return MAILBOX_NOT_ON_GRAPH
    if status == 403 and code in _GRAPH_DENIED_CODES:
        return ErrorCode.OAUTH_SCOPE_MISSING
    return _by_status(status)


def _gmail_reasons(body: object) -> frozenset[str]:
    """Every ``reason`` of a Gmail error body; none when the body is not one."""
    try:
        error = _GoogleEnvelope.model_validate(body).error
    except ValidationError:
        return frozenset()
    return frozenset(item.reason for item in [*error.errors, *error.details] if item.reason)


def _graph_code(body: object) -> str:
    """``error.code`` of a Graph error body; empty when the body is not one."""
    try:
        return _GraphEnvelope.model_validate(body).error.code
    except ValidationError:
        return ""


def _by_status(status: int) -> ErrorCode:
    """401: the provider refuses the token the broker has just handed out, so access was
    revoked. Any other unexpected answer counts as the provider not serving the mailbox."""
    if status == 401:
        return ErrorCode.OAUTH_TOKEN_REVOKED
    if status == 429:
        return ErrorCode.PROVIDER_THROTTLED
    return ErrorCode.PROVIDER_UNAVAILABLE
