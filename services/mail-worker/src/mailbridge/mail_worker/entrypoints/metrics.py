"""The mail-worker's Prometheus metrics: commands handled, by kind and by how they were settled,
failed polls by kind (config-api backs those mailboxes off), watches, and reads on demand."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages import Message


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

    def settled(self, route: str, result: str, seconds: float) -> None:
        command = kind_of(route)
        self.commands.labels(command=command, result=result).inc()
        self.seconds.labels(command=command).observe(seconds)


def kind_of(route: str) -> str:
    """``cmd.mail.message.send.v1`` → ``send``; anything else → ``unknown``."""
    tokens = route.split(".")
    return tokens[3] if len(tokens) == 5 and tokens[0] == "cmd" else "unknown"
