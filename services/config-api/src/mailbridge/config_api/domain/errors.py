"""config-api's own errors: a service it depends on did not answer; a request refused as it came.

MailbridgeError             (shared) a code; message and hint from the catalog, or an ErrorInfo
 └── ErrorWithStatus        an error whose answer's status is its own, not its code's
      ├── ServiceUnavailable    a service did not answer (no responders, or not in time): 503
      │    ├── PolicyUnavailable policy (org OAuth apps, client orgs)
      │    ├── BrokerUnavailable the oauth-broker (sign-ins, grants)
      │    └── WorkerUnavailable no mail-worker (reading a mailbox on demand)
      ├── Forbidden         an Email tab session's change without its CSRF token, or from
      │                     another origin: 403, code ``unauthorized``
      └── MailServerRefused a mail server refused or failed a read on demand (a login refused,
                            a timeout): 502, its own code
"""

from __future__ import annotations

from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError


class ErrorWithStatus(MailbridgeError):
    """Told exactly as ``info`` says, and answered with the class's ``status``."""

    status: int

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.code, info.message, info=info)


class ServiceUnavailable(ErrorWithStatus):
    """Answered 503: the request may be retried once the service is back. Its code is the
    taxonomy's "nobody answered" one, ``worker_unavailable`` (SPEC §7 has none per service)."""

    status = 503


class Forbidden(ErrorWithStatus):
    """Answered 403: the caller is known, but the request may not be made as it came."""

    status = 403


class MailServerRefused(ErrorWithStatus):
    """Answered 502: what a mail-worker asked of the agent's mail server failed there."""

    status = 502


def unanswered(service: str) -> ErrorInfo:
    return ErrorInfo(
        code=ErrorCode.WORKER_UNAVAILABLE,
        message=f"The {service} did not answer in time.",
        hint=f"Check that the {service} is running and connected to NATS, then try again.",
    )


class PolicyUnavailable(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__(unanswered("policy service"))


class BrokerUnavailable(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__(unanswered("oauth-broker"))


class WorkerUnavailable(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__(unanswered("mail-worker"))
