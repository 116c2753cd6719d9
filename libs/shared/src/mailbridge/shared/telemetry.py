"""Telemetry: an OpenTelemetry tracer provider per service, JSON logs carrying trace ids, and the
FastStream middleware that carries trace context across NATS in message headers.

Spans leave the process only where they are sent: to an OTLP/HTTP collector
(``MAILBRIDGE_OTLP_ENDPOINT``, in batches at most ``MAILBRIDGE_OTLP_EXPORT_DELAY_SECONDS`` old)
and, for debugging, to stderr (``MAILBRIDGE_OTEL_CONSOLE``). The exporter runs in the batch
processor's own thread, so a slow or absent collector never holds up a request or a send; the
exporter's other ``OTEL_EXPORTER_OTLP_*`` variables (headers, certificate, compression) apply.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

_PROTOCOL_LOGGERS = ("aioimaplib", "aiosmtplib", "nats")
_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the current trace and span ids when there is a span."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_trace_ids())
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _trace_ids() -> dict[str, str]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def configure_logging(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for chatty in _PROTOCOL_LOGGERS:  # they log commands on the wire, credentials included
        logging.getLogger(chatty).setLevel(max(logging.INFO, root.level))


@dataclass(frozen=True)
class SpanExport:
    """Where a service's spans go: an OTLP/HTTP collector's base URL (none: not exported), how
    long a finished span may wait for its batch, and whether they are printed to stderr too."""

    otlp_endpoint: str | None = None
    delay_seconds: float = 5.0
    console: bool = False


def build_tracer_provider(
    service: str, instance: str, export: SpanExport = SpanExport()
) -> TracerProvider:
    """The process's tracer provider (also made the global one, for the adapters that start
    spans of their own), naming the service and this replica of it."""
    resource = Resource.create({"service.name": service, "service.instance.id": instance})
    provider = TracerProvider(resource=resource)
    trace.set_tracer_provider(provider)
    if export.otlp_endpoint:
        exporter = OTLPSpanExporter(endpoint=export.otlp_endpoint.rstrip("/") + "/v1/traces")
        delay = int(export.delay_seconds * 1000)
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=delay))
    if export.console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    return provider


def nats_middleware(provider: TracerProvider) -> NatsTelemetryMiddleware:
    return NatsTelemetryMiddleware(tracer_provider=provider)


def trace_carrier() -> dict[str, str]:
    """The current trace as W3C headers (``traceparent``, ``tracestate``), to store with work that
    is published later; empty outside a trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def continued_trace(carrier: dict[str, str] | None) -> Iterator[None]:
    """Run the block as part of the trace stored in ``carrier`` (see ``trace_carrier``)."""
    if not carrier:
        yield
        return
    token = context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        context.detach(token)
