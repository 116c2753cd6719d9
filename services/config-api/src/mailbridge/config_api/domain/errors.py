"""Errors whose message and hint are given whole, rather than taken from the shared catalog.

MailbridgeError              (shared) a code; message and hint from the catalog
 └── ExplainedError          a complete ErrorInfo: one policy answered with, or a hint of our own
      └── PolicyUnavailable  policy did not answer (no responders, or not in time): 503
"""

from __future__ import annotations

from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError


class ExplainedError(MailbridgeError):
    """Shown exactly as ``info`` says; ``status`` overrides the HTTP status of its code."""

    def __init__(self, info: ErrorInfo, status: int | None = None) -> None:
        super().__init__(info.code, info.message)
        self._info = info
        self.status = status

    def info(self) -> ErrorInfo:
        return self._info


class PolicyUnavailable(ExplainedError):
    def __init__(self) -> None:
        super().__init__(
            ErrorInfo(
                code=ErrorCode.WORKER_UNAVAILABLE,
                message="The policy service did not answer in time.",
                hint="Check that the policy service is running and connected to NATS, "
                "then try again.",
            ),
            status=503,
        )
