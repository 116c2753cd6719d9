"""Tracing and Prometheus metrics of the HTTP gateway, and ``GET /metrics``.

Spans come from FastAPI's native OpenTelemetry support with the service's tracer provider: one
server span per request, continuing the caller's W3C ``traceparent``; publishes made while handling
it run inside that span, so FastStream's middleware carries the same trace into NATS headers.
Metrics are counted by a plain ASGI middleware (no per-request task group), labelled by route
template, never by raw path, so agent ids do not explode the series count. The service's own
metrics (the outbox relay's) are read from its registry at each scrape, once the lifespan built it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from fastapi import FastAPI, Response
from fastapi.telemetry import TelemetryConfig
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AccessLogWithoutQuery(logging.Filter):
    """uvicorn's access line with the path only: the OAuth callback's query holds the code."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def hide_queries_in_access_log() -> None:
    logging.getLogger("uvicorn.access").addFilter(AccessLogWithoutQuery())


UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def telemetry_config(provider: TracerProvider | None) -> TelemetryConfig:
    """FastAPI's native telemetry: a server span per request, nothing more; the probes and the
    scrapes are not traced (a trace every few seconds per replica that says nothing)."""
    if provider is None:
        return {"tracing": False, "metrics": False, "logs": False}
    return {
        "tracer_provider": provider, "operation_spans": False, "metrics": False, "logs": False,
        "exclude": _is_probe,
    }  # fmt: skip


def _is_probe(scope: Scope) -> bool:
    return scope.get("path") in UNTRACED_PATHS


class PrometheusMiddleware:
    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "mailbridge_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "mailbridge_http_request_seconds",
            "HTTP latency",
            ["method", "route"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            self.requests.labels(scope["method"], route, str(status)).inc()
            self.latency.labels(scope["method"], route).observe(time.perf_counter() - started)


class ServiceMetrics:
    """A collector of the running service's own metrics (the outbox relay's); none before the
    lifespan started it."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        registry = getattr(self._app.state, "service_registry", None)
        if registry is not None:
            yield from registry.collect()


def install(app: FastAPI) -> None:
    registry = CollectorRegistry()
    registry.register(ServiceMetrics(app))
    app.add_middleware(PrometheusMiddleware, registry=registry)

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
