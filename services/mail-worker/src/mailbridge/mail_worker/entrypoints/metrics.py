"""The mail-worker's Prometheus metrics: commands handled, by kind and by how they were settled,
how long a send took from its command's issue to the mail server's answer, the shared consumer's
backlog, failed polls by kind (config-api backs those mailboxes off), watches, and reads on
demand."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages import Event, Message, MessageSendFailed, MessageSent, SendMessage

# A send waits in the consumer's backlog, for its pacing and for retries: minutes are not rare.
SEND_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.commands = Counter(
            "mailbridge_worker_commands",
            "Commands settled, by kind (test, send, poll) and result (ack, retry, term)",
            ["command", "result"],
            registry=registry,
        )
        self.seconds = Histogram(
            "mailbridge_worker_command_seconds",
            "Time to handle one command delivery",
            ["command"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.send_seconds = Histogram(
            "mailbridge_worker_send_seconds",
            "From a send command's issue to the mail server's final answer, by outcome (sent,"
            " failed, blocked, unknown): the wait in the backlog and the retries included",
            ["outcome"],
            buckets=SEND_BUCKETS,
            registry=registry,
        )
        self.consumer_pending = Gauge(
            "mailbridge_worker_consumer_pending",
            "Commands in the shared consumer not yet delivered to any replica (every replica"
            " reports the same consumer: take the max, not the sum)",
            registry=registry,
        )
        self.consumer_ack_pending = Gauge(
            "mailbridge_worker_consumer_ack_pending",
            "Commands delivered to a replica and not yet acknowledged",
            registry=registry,
        )

        self.poll_failures = Counter(
            "mailbridge_poll_backoff_failures",
            "Polls that failed and were reported for backoff, by kind (auth: the badge turns"
            " error and polling stops; transient: the mailbox's next polls wait longer)",
            ["kind"],
            registry=registry,
        )

        self.watched = Gauge(
            "mailbridge_watch_mailboxes",
            "Mailboxes this worker watches with IMAP IDLE now",
            registry=registry,
        )
        self.watch_reconnects = Counter(
            "mailbridge_watch_reconnects",
            "Watch sessions replaced after they were lost or stopped answering",
            registry=registry,
        )
        self.watch_ends = Counter(
            "mailbridge_watch_ended",
            "Watches that ended, by reason (no_push: the server has no IDLE; failed: reported"
            " and left to polls; stopped: disconnected, re-saved or handed to another worker)",
            ["reason"],
            registry=registry,
        )
        self.pushed = Counter(
            "mailbridge_watch_received_messages",
            "Messages read by watch sessions (pushed, or found by their quiet-spell read)",
            registry=registry,
        )

        self.reads = Counter(
            "mailbridge_worker_reads",
            "Reads on demand answered, by kind (list, get, seen) and result (ok, or the error"
            " code: not_found, invalid_input, auth_failed…)",
            ["kind", "result"],
            registry=registry,
        )

    def read(self, request: type[Message], error: ErrorInfo | None) -> None:
        """``rpc.mail.messages.list.v1`` → ``list``."""
        kind = request.subject_template.split(".")[3]
        self.reads.labels(kind=kind, result=error.code if error else "ok").inc()

    def poll_failed(self, auth: bool) -> None:
        self.poll_failures.labels(kind="auth" if auth else "transient").inc()

    def send_answered(self, command: SendMessage, events: list[Event], now: datetime) -> None:
        """A send settled with ``events``; its outcome is the first that says one."""
        outcome = next((_outcome(e) for e in events if _outcome(e) is not None), None)
        if outcome is not None:
            seconds = max((now - command.issued_at).total_seconds(), 0.0)
            self.send_seconds.labels(outcome=outcome).observe(seconds)

    def consumer_backlog(self, pending: int, ack_pending: int) -> None:
        self.consumer_pending.set(pending)
        self.consumer_ack_pending.set(ack_pending)

    def settled(self, route: str, result: str, seconds: float) -> None:
        command = kind_of(route)
        self.commands.labels(command=command, result=result).inc()
        self.seconds.labels(command=command).observe(seconds)


def _outcome(event: Event) -> str | None:
    if isinstance(event, MessageSent):
        return "sent"
    return event.outcome.value if isinstance(event, MessageSendFailed) else None


def kind_of(route: str) -> str:
    """``cmd.mail.message.send.v1`` → ``send``; anything else → ``unknown``."""
    tokens = route.split(".")
    return tokens[3] if len(tokens) == 5 and tokens[0] == "cmd" else "unknown"
