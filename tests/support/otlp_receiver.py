"""A small OTLP/HTTP trace receiver on loopback, as a collector would be: ``POST /v1/traces``
with an ``ExportTraceServiceRequest`` in protobuf (gzip or not), answered with an empty
``ExportTraceServiceResponse``. It keeps the spans, decoded, for a test to read by trace id.

Bounded: a body over ``MAX_BODY_BYTES`` is refused (413) and at most ``MAX_SPANS`` spans are
kept (later ones are counted in ``dropped``), so a chatty system cannot fill the test's memory.
It serves from a thread of its own; ``woken()`` gives the calling event loop an event that is
set at each batch, for ``eventually(..., wake=receiver.woken())``.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_SPANS = 20_000
PROTOBUF = "application/x-protobuf"
_SCALARS = ("string_value", "int_value", "bool_value", "double_value")


@dataclass(frozen=True)
class ReceivedSpan:
    service: str  # the resource's service.name
    name: str
    trace_id: str  # hex, as W3C traceparent writes it
    span_id: str
    parent_span_id: str  # "" for a root span
    kind: int  # opentelemetry.proto.trace.v1.Span.SpanKind
    attributes: dict[str, object]


@dataclass
class OtlpReceiver:
    spans: list[ReceivedSpan] = field(default_factory=list)
    dropped: int = 0
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wakes: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """The base URL a service is given (``MAILBRIDGE_OTLP_ENDPOINT``)."""
        return f"http://127.0.0.1:{self.port}"

    def woken(self) -> asyncio.Event:
        """An event of the running loop, set whenever a batch of spans arrives."""
        event = asyncio.Event()
        with self._lock:
            self._wakes.append((asyncio.get_running_loop(), event))
        return event

    def of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def keep(self, request: ExportTraceServiceRequest) -> None:
        decoded = list(_spans_of(request))
        with self._lock:
            room = max(MAX_SPANS - len(self.spans), 0)
            self.spans.extend(decoded[:room])
            self.dropped += len(decoded) - min(room, len(decoded))
            wakes = list(self._wakes)
        for loop, event in wakes:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)


def _spans_of(request: ExportTraceServiceRequest) -> Iterator[ReceivedSpan]:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield ReceivedSpan(
                    service=service,
                    name=span.name,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    kind=span.kind,
                    attributes=_attributes(span.attributes),
                )


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, object]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in _SCALARS else str(value)


def _handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            if self.path != "/v1/traces" or not self.headers.get("Content-Type", "").startswith(
                PROTOBUF
            ):
                self._answer(404 if self.path != "/v1/traces" else 415)
                return
            if length > MAX_BODY_BYTES:
                self._answer(413)
                return
            body = self.rfile.read(length)
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            try:
                receiver.keep(ExportTraceServiceRequest.FromString(body))
            except DecodeError:
                self._answer(400)
                return
            self._answer(200, ExportTraceServiceResponse().SerializeToString())

        def _answer(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Type", PROTOBUF)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None  # quiet: pytest shows the test's own output

    return Handler


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A receiver on a free loopback port, serving until the block ends."""
    receiver = OtlpReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
