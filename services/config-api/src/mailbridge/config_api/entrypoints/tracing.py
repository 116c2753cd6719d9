"""A span per HTTP request, continuing the caller's W3C ``traceparent`` when it sends one.

Publishes made while handling the request run inside this span, so FastStream's telemetry
middleware carries the same trace into NATS headers and on to the mail-worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind


def install(app: FastAPI, provider: TracerProvider) -> None:
    tracer = provider.get_tracer("mailbridge.config_api.http")

    @app.middleware("http")
    async def trace_request(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        context = propagate.extract(dict(request.headers))
        name = f"{request.method} {request.url.path}"
        with tracer.start_as_current_span(name, context=context, kind=SpanKind.SERVER) as span:
            response = await call_next(request)
            span.set_attribute("http.response.status_code", response.status_code)
            return response
