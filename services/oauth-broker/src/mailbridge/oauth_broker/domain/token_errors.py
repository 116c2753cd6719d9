"""What a token endpoint's failure means, decided on ``error`` and the HTTP status, never on
``error_description`` (Google's text changes; Microsoft says never to branch on it).
Microsoft's ``error_codes`` only pick the hint."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from mailbridge.shared.errors import ErrorCode, ErrorInfo


class Failure(Enum):
    REVOKED = "revoked"  # invalid_grant: only a new authorization helps
    MISCONFIGURED = "misconfigured"  # the app's id or secret: fixed by whoever owns the app
    TRANSIENT = "transient"  # 429, 5xx, network: retried, the badge unchanged


@dataclass(frozen=True)
class TokenEndpointError(Exception):
    failure: Failure
    info: ErrorInfo
    # AADSTS65001: no consent for the resource asked (outlook.office.com), the grant itself alive
    consent_missing: bool = False


_SECRET_HINTS = {
    7000222: "The app's client secret has expired: create a new secret in Microsoft Entra "
    "(App registrations → Certificates & secrets) and save it.",
    7000215: "The client secret is wrong: copy the secret's Value (not its ID) from Entra.",
    700016: "No app with this client id in the tenant: check the client ID and the tenant.",
}
_INACTIVE_CODES = frozenset({70008, 700082})
_NO_CONSENT = 65001


def classify(status: int, body: Any) -> TokenEndpointError:
    error = body.get("error") if isinstance(body, dict) else None
    codes = _error_codes(body)
    if status == 429:
        return _transient(
            ErrorCode.PROVIDER_THROTTLED, "The provider is throttling token requests."
        )
    if status >= 500 or error in {"temporarily_unavailable", "server_error"}:
        return _transient(ErrorCode.PROVIDER_UNAVAILABLE, f"The token endpoint answered {status}.")
    if error == "invalid_grant":
        return TokenEndpointError(Failure.REVOKED, _revoked(codes), _NO_CONSENT in codes)
    if error in {"invalid_client", "unauthorized_client"}:
        return TokenEndpointError(Failure.MISCONFIGURED, _misconfigured(str(error), codes))
    if error == "invalid_scope":
        info = ErrorInfo.of(ErrorCode.OAUTH_SCOPE_MISSING).saying(
            "The provider refused the scopes asked for (invalid_scope)."
        )
        return TokenEndpointError(Failure.MISCONFIGURED, info)
    return _transient(
        ErrorCode.PROVIDER_UNAVAILABLE, f"The token endpoint answered {status} {error}."
    )


def _error_codes(body: Any) -> set[int]:
    codes = body.get("error_codes") if isinstance(body, dict) else None
    return {code for code in codes if isinstance(code, int)} if isinstance(codes, list) else set()


def _transient(code: ErrorCode, message: str) -> TokenEndpointError:
    return TokenEndpointError(Failure.TRANSIENT, ErrorInfo.of(code).saying(message))


def _revoked(codes: set[int]) -> ErrorInfo:
    info = ErrorInfo.of(ErrorCode.OAUTH_TOKEN_REVOKED)
    if codes & _INACTIVE_CODES:
        return info.saying("The authorization expired after the mailbox went unused too long.")
    return info


def _misconfigured(error: str, codes: set[int]) -> ErrorInfo:
    hint = next((_SECRET_HINTS[code] for code in sorted(codes) if code in _SECRET_HINTS), None)
    message = f"The provider refused the OAuth app ({error})."
    if 7000222 in codes:
        message = "The OAuth app's client secret has expired."
    return ErrorInfo.of(ErrorCode.OAUTH_APP_MISCONFIGURED).saying(message, hint)
