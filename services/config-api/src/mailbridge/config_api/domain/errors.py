"""config-api's own error: policy did not answer.

MailbridgeError         (shared) a code; message and hint from the catalog, or a whole ErrorInfo
 └── PolicyUnavailable  policy did not answer (no responders, or not in time): 503
"""

from __future__ import annotations

from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError


class PolicyUnavailable(MailbridgeError):
    """Answered 503: the request may be retried once policy is back."""

    status = 503

    def __init__(self) -> None:
        info = ErrorInfo(
            code=ErrorCode.WORKER_UNAVAILABLE,
            message="The policy service did not answer in time.",
            hint="Check that the policy service is running and connected to NATS, then try again.",
        )
        super().__init__(info.code, info.message, info=info)
