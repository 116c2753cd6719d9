"""config-api's own errors: a service it depends on did not answer.

MailbridgeError             (shared) a code; message and hint from the catalog, or an ErrorInfo
 └── ServiceUnavailable     a service did not answer (no responders, or not in time): 503
      ├── PolicyUnavailable policy (org OAuth apps, client orgs)
      └── BrokerUnavailable the oauth-broker (sign-ins, grants)
"""

from __future__ import annotations

from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError


class ServiceUnavailable(MailbridgeError):
    """Answered 503: the request may be retried once the service is back. Its code is the
    taxonomy's "nobody answered" one, ``worker_unavailable`` (SPEC §7 has none per service)."""

    status = 503

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.code, info.message, info=info)


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
