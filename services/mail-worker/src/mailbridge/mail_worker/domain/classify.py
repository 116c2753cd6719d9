"""Pure rules that turn server replies into the SPEC §7 error taxonomy."""

from __future__ import annotations

from mailbridge.shared.errors import ErrorCode, PermanentError, RetryableError

_SMTP_AUTH_DISABLED_MARKERS = ("5.7.139", "smtpclientauthentication is disabled")
_BASIC_AUTH_DISABLED_MARKERS = ("5.7.30", "basic authentication is disabled", "basicauthblocked")
_WEB_LOGIN_REQUIRED = ("web login required", "application-specific password required", "5.7.9")


def classify_smtp_auth_failure(code: int, message: str) -> ErrorCode:
    """An SMTP AUTH refusal: Microsoft's tenant switches first, then plain bad credentials."""
    text = message.lower()
    if any(marker in text for marker in _SMTP_AUTH_DISABLED_MARKERS):
        return ErrorCode.SMTP_AUTH_DISABLED
    if any(marker in text for marker in _BASIC_AUTH_DISABLED_MARKERS):
        return ErrorCode.BASIC_AUTH_DISABLED
    if code == 535 or any(marker in text for marker in _WEB_LOGIN_REQUIRED):
        return ErrorCode.AUTH_FAILED
    if 400 <= code < 500:
        return ErrorCode.PROVIDER_UNAVAILABLE
    return ErrorCode.AUTH_FAILED


def classify_imap_login_failure(text: str) -> ErrorCode:
    """An IMAP ``NO``/``BAD`` to LOGIN; providers say "basic auth disabled" in the text."""
    lowered = text.lower()
    if "[limit]" in lowered or "maximum number of connections" in lowered:
        return ErrorCode.PROVIDER_THROTTLED
    if "basicauthblocked" in lowered or "basic auth" in lowered or "logondenied" in lowered:
        return ErrorCode.BASIC_AUTH_DISABLED
    if "[unavailable]" in lowered:
        return ErrorCode.PROVIDER_UNAVAILABLE
    return ErrorCode.AUTH_FAILED


TEMPORARY = frozenset({ErrorCode.PROVIDER_THROTTLED, ErrorCode.PROVIDER_UNAVAILABLE})


def refusal(code: ErrorCode, detail: str) -> RetryableError | PermanentError:
    """A login refusal: wait and retry when the server is busy or limiting, else give up."""
    return RetryableError(code, detail) if code in TEMPORARY else PermanentError(code, detail)


def classify_smtp_reply(code: int, message: str) -> ErrorCode:
    """A refusal of MAIL, RCPT or DATA."""
    text = message.lower()
    if code == 552 or "5.3.4" in text or "too large" in text or "size" in text:
        return ErrorCode.MESSAGE_TOO_LARGE
    if code in (421, 450, 451, 452) or "rate" in text or "throttl" in text:
        return (
            ErrorCode.PROVIDER_THROTTLED
            if "rate" in text or "throttl" in text
            else (ErrorCode.PROVIDER_UNAVAILABLE)
        )
    if any(marker in text for marker in _SMTP_AUTH_DISABLED_MARKERS):
        return ErrorCode.SMTP_AUTH_DISABLED
    if code in (530, 535):
        return ErrorCode.AUTH_FAILED
    return ErrorCode.INVALID_INPUT if code >= 500 else ErrorCode.PROVIDER_UNAVAILABLE
