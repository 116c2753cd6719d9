"""policy's Prometheus metrics: what it decided about sends, and how long deciding took."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from mailbridge.shared.messages import SendAuthorization


class PolicyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "mailbridge_policy_send_decisions",
            "Send authorizations by decision (allowed, held, retry: not decided for now, or the"
            " refusal's code)",
            ["decision"],
            registry=registry,
        )
        self.released = Counter(
            "mailbridge_policy_reservations_released",
            "Reservations given back by sends that failed for good",
            registry=registry,
        )
        self.latency = Histogram(
            "mailbridge_policy_authorize_seconds", "Time to decide one send", registry=registry
        )

    def decided(self, answer: SendAuthorization, seconds: float) -> None:
        self.decisions.labels(decision=_decision(answer)).inc()
        self.latency.observe(seconds)


def _decision(answer: SendAuthorization) -> str:
    if answer.allowed:
        return "allowed"
    if answer.hold is not None:
        return "held"
    if answer.undecided:
        return "retry"
    return str(answer.error.code) if answer.error else "refused"
