"""A span and two Prometheus series per HTTP request, and ``GET /metrics``.

The span continues the caller's W3C ``traceparent`` when it sends one. Publishes made while handling
the request run inside it, so FastStream's telemetry middleware carries the same trace into NATS
headers and on to the mail-worker. Metrics are labelled by route template, never by raw path, so
agent ids do not explode the series count.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)


def install(app: FastAPI, provider: TracerProvider) -> None:
    tracer = provider.get_tracer("mailbridge.config_api.http")
    registry = CollectorRegistry()
    requests = Counter(
        "mailbridge_http_requests",
        "HTTP requests",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "mailbridge_http_request_seconds", "HTTP latency", ["method", "route"], registry=registry
    )

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        context = propagate.extract(dict(request.headers))
        started = time.perf_counter()
        with tracer.start_as_current_span(
            request.method, context=context, kind=SpanKind.SERVER
        ) as span:
            response = await call_next(request)
            route = _route_of(request)
            span.update_name(f"{request.method} {route}")
            span.set_attribute("http.response.status_code", response.status_code)
        requests.labels(request.method, route, str(response.status_code)).inc()
        latency.labels(request.method, route).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))
