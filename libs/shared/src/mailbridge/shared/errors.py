"""The one error taxonomy across IMAP, SMTP, Gmail, Graph and OAuth (SPEC §7).

Every code has a message for people and a fix-it hint the UI shows under the Last Error banner.

    MailbridgeError            carries an ErrorCode and a safe detail (never a secret)
     ├── RetryableError        the same work may succeed later: nack with a delay
     └── PermanentError        retrying cannot help: emit a failure event, then term
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict


class ErrorCode(StrEnum):
    AUTH_FAILED = "auth_failed"
    CONNECTION_REFUSED = "connection_refused"
    TIMEOUT = "timeout"
    DNS_FAILED = "dns_failed"
    TLS_FAILED = "tls_failed"
    HOST_NOT_ALLOWED = "host_not_allowed"
    SMTP_AUTH_DISABLED = "smtp_auth_disabled"
    BASIC_AUTH_DISABLED = "basic_auth_disabled"
    OAUTH_NOT_AUTHORIZED = "oauth_not_authorized"
    OAUTH_TOKEN_REVOKED = "oauth_token_revoked"
    OAUTH_SCOPE_MISSING = "oauth_scope_missing"
    OAUTH_APP_MISCONFIGURED = "oauth_app_misconfigured"
    OAUTH_REDIRECT_MISMATCH = "oauth_redirect_mismatch"
    MAILBOX_MISMATCH = "mailbox_mismatch"
    RECIPIENT_NOT_ALLOWED = "recipient_not_allowed"
    SEND_LIMIT_REACHED = "send_limit_reached"
    DOMAIN_NOT_ALLOWED = "domain_not_allowed"
    MESSAGE_TOO_LARGE = "message_too_large"
    INVALID_INPUT = "invalid_input"
    PROVIDER_THROTTLED = "provider_throttled"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    WORKER_UNAVAILABLE = "worker_unavailable"
    DATABASE_UNAVAILABLE = "database_unavailable"
    NOT_CONFIGURED = "not_configured"
    NOT_FOUND = "not_found"
    UNAUTHORIZED = "unauthorized"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    PRECONDITION_FAILED = "precondition_failed"
    APPROVAL_EXPIRED = "approval_expired"
    NOT_HELD = "not_held"
    INTERNAL = "internal"


_CATALOG: dict[ErrorCode, tuple[str, str]] = {
    ErrorCode.AUTH_FAILED: (
        "The server refused the username or password.",
        "Regenerate the app password; use an app password, not the account password.",
    ),
    ErrorCode.CONNECTION_REFUSED: (
        "The server refused the connection.",
        "Check the host and port; the server may be down or the port closed.",
    ),
    ErrorCode.TIMEOUT: (
        "The server did not answer in time.",
        "Check the host and port, and that a firewall does not drop the connection.",
    ),
    ErrorCode.DNS_FAILED: (
        "The host name could not be resolved.",
        "Check the spelling of the IMAP and SMTP host names.",
    ),
    ErrorCode.TLS_FAILED: (
        "A secure connection could not be established.",
        "Check the security setting (SSL on 993/465, STARTTLS on 587) and the server certificate.",
    ),
    ErrorCode.HOST_NOT_ALLOWED: (
        "The host resolves to an address mailbridge may not connect to.",
        "Use the provider's public host name; private and loopback addresses are refused.",
    ),
    ErrorCode.SMTP_AUTH_DISABLED: (
        "SMTP AUTH is disabled for this mailbox or tenant (535 5.7.139).",
        "Enable Authenticated SMTP for the mailbox in the Microsoft 365 admin center, "
        "or connect with Microsoft OAuth.",
    ),
    ErrorCode.BASIC_AUTH_DISABLED: (
        "The provider has disabled password sign-in for IMAP/SMTP.",
        "Connect with the provider's OAuth method instead of a password.",
    ),
    ErrorCode.OAUTH_NOT_AUTHORIZED: (
        "The mailbox has not been authorized yet.",
        "Click Authorize.",
    ),
    ErrorCode.OAUTH_TOKEN_REVOKED: (
        "Access to the mailbox was revoked or has expired.",
        "Re-authorize.",
    ),
    ErrorCode.OAUTH_SCOPE_MISSING: (
        "A permission mailbridge needs was not granted.",
        "Re-authorize and keep every requested permission ticked.",
    ),
    ErrorCode.OAUTH_APP_MISCONFIGURED: (
        "The OAuth app was refused: wrong client id or secret, or an expired secret.",
        "Check the client id and secret of the OAuth app; create a new secret if it expired.",
    ),
    ErrorCode.OAUTH_REDIRECT_MISMATCH: (
        "The OAuth app does not list mailbridge's redirect URI.",
        "Add the callback URL shown in settings to the app's redirect URIs.",
    ),
    ErrorCode.MAILBOX_MISMATCH: (
        "You signed in as a different address than the one configured.",
        "Sign in with the configured mailbox, or change the configured address.",
    ),
    ErrorCode.RECIPIENT_NOT_ALLOWED: (
        "A recipient is not on the organization's allow-list.",
        "Send only to allowed recipients, or ask an administrator to allow this one.",
    ),
    ErrorCode.SEND_LIMIT_REACHED: (
        "The sending limit for this period has been reached.",
        "Wait until the limit resets, or ask an administrator to raise it.",
    ),
    ErrorCode.DOMAIN_NOT_ALLOWED: (
        "The mailbox address is outside the client organization's email domain.",
        "Use an address in the client organization's domain.",
    ),
    ErrorCode.MESSAGE_TOO_LARGE: (
        "The message is larger than the allowed size.",
        "Send smaller attachments, or share a link instead.",
    ),
    ErrorCode.INVALID_INPUT: (
        "The request is not valid.",
        "Correct the highlighted fields and try again.",
    ),
    ErrorCode.PROVIDER_THROTTLED: (
        "The provider is throttling requests.",
        "Wait a few minutes; mailbridge retries automatically.",
    ),
    ErrorCode.PROVIDER_UNAVAILABLE: (
        "The provider is temporarily unavailable.",
        "Try again later; mailbridge retries automatically.",
    ),
    ErrorCode.WORKER_UNAVAILABLE: (
        "No mail worker answered in time.",
        "Check that at least one mail-worker is running and connected to NATS.",
    ),
    ErrorCode.DATABASE_UNAVAILABLE: (
        "mailbridge's database is unavailable for the moment.",
        "Try again in a few seconds (a send with the same Idempotency-Key is never queued twice);"
        " if it lasts, the operator should check PostgreSQL.",
    ),
    ErrorCode.NOT_CONFIGURED: (
        "This agent has no email configuration yet.",
        "Save a configuration first.",
    ),
    ErrorCode.NOT_FOUND: (
        "Not found.",
        "Check the id.",
    ),
    ErrorCode.UNAUTHORIZED: (
        "A valid API key is required.",
        "Send `Authorization: Bearer <api key>`; create a key with "
        "`python -m mailbridge.config_api keys create`.",
    ),
    ErrorCode.METHOD_NOT_ALLOWED: (
        "This route does not answer that method.",
        "See the API documentation at /docs for the methods of each route.",
    ),
    ErrorCode.PRECONDITION_FAILED: (
        "The configuration changed since you read it.",
        "Reload the configuration and apply your change again.",
    ),
    ErrorCode.APPROVAL_EXPIRED: (
        "Nobody approved the send in time; it was not sent.",
        "Send it again, and approve it before it expires.",
    ),
    ErrorCode.NOT_HELD: (
        "The send is not waiting for approval: it was decided already, or never held.",
        "Reload the send to see where it stands.",
    ),
    ErrorCode.INTERNAL: (
        "Something went wrong inside mailbridge.",
        "Try again; if it keeps happening, contact the operator.",
    ),
}


CREDENTIAL_ERROR_CODES = frozenset(
    {
        ErrorCode.AUTH_FAILED,
        ErrorCode.SMTP_AUTH_DISABLED,
        ErrorCode.BASIC_AUTH_DISABLED,
        ErrorCode.OAUTH_NOT_AUTHORIZED,
        ErrorCode.OAUTH_TOKEN_REVOKED,
        ErrorCode.OAUTH_SCOPE_MISSING,
        ErrorCode.OAUTH_APP_MISCONFIGURED,
        ErrorCode.MAILBOX_MISMATCH,
    }
)
"""Codes that mean "the mailbox's credentials no longer work": only the user can fix them, so a
send or poll that meets one turns the badge to error at once instead of being tried again."""


def needs_new_credentials(code: ErrorCode) -> bool:
    """Whether retrying with the same credentials is pointless (and, for a password, risks
    locking the account): every other failure may pass by itself."""
    return code in CREDENTIAL_ERROR_CODES


class ErrorInfo(BaseModel):
    """The error as it travels in events and API answers: code, message, hint."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: ErrorCode
    message: str
    hint: str

    @classmethod
    def of(cls, code: ErrorCode, detail: str | None = None) -> ErrorInfo:
        message, hint = _CATALOG[code]
        return cls(code=code, message=f"{message} {detail}" if detail else message, hint=hint)

    def saying(self, message: str | None = None, hint: str | None = None) -> ErrorInfo:
        """The same code, told more precisely than the catalog can."""
        return ErrorInfo(code=self.code, message=message or self.message, hint=hint or self.hint)


def message_of(code: ErrorCode) -> str:
    return _CATALOG[code][0]


def hint_of(code: ErrorCode) -> str:
    return _CATALOG[code][1]


class MailbridgeError(Exception):
    """An error with a taxonomy code; ``detail`` must never contain a secret. Given a whole
    ``info`` (one another service answered with, or a hint of our own), it is shown as it is;
    otherwise the message and hint come from the catalog."""

    def __init__(
        self, code: ErrorCode, detail: str | None = None, *, info: ErrorInfo | None = None
    ) -> None:
        super().__init__(f"{code.value}: {detail}" if detail else code.value)
        self.code = code
        self.detail = detail
        self._info = info

    @classmethod
    def explained(cls, info: ErrorInfo) -> Self:
        """The error exactly as ``info`` says it."""
        return cls(info.code, info.message, info=info)

    def info(self) -> ErrorInfo:
        return self._info or ErrorInfo.of(self.code, self.detail)


class RetryableError(MailbridgeError):
    """The same work may succeed later (a 4xx reply, a timeout, a dependency down). When the
    provider said how long to wait (``Retry-After``), ``retry_after_seconds`` carries it, so the
    retry is not sooner than that, whatever the usual backoff."""

    def __init__(
        self,
        code: ErrorCode,
        detail: str | None = None,
        *,
        info: ErrorInfo | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(code, detail, info=info)
        self.retry_after_seconds = retry_after_seconds


class PermanentError(MailbridgeError):
    """Retrying cannot help (a 5xx reply, bad input, a policy refusal)."""
