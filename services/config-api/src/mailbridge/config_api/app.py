"""The FastAPI application: routes, problem+json errors, and the container's lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from mailbridge.config_api.container import Container
from mailbridge.config_api.entrypoints import agent_mcp, http, links, observability, problems
from mailbridge.shared.service import Running

DESCRIPTION = """
The HTTP gateway of mailbridge: register agents, save their email configuration (secrets are
write-only), run connection tests through a mail-worker, and follow the mailbox status; share OAuth
apps across an org and restrict what its client organizations' agents may send.
Errors are `application/problem+json` with a stable `code` and a fix-it `hint`. Any route that
reads or writes stored state answers 503 `database_unavailable` (with `Retry-After`) while
mailbridge's database is away, and answers again by itself once it is back.
"""


def create_app(
    start: Callable[[], Awaitable[Running[Container]]], provider: TracerProvider | None = None
) -> FastAPI:
    """The app; ``start`` (``shared.service.start`` of config-api's blueprint) runs in its lifespan,
    and what it started stops when uvicorn does."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = await start()
        app.state.container = running.container
        app.state.service_registry = running.resources.registry  # the relay's metrics
        try:
            async with serve_mcp():  # the MCP SDK's tasks run inside the app's life
                yield
        finally:
            await running.stop()

    app = FastAPI(
        title="mailbridge config-api",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry=observability.telemetry_config(provider),
    )
    for router in http.routers():
        app.include_router(router)
    serve_mcp = agent_mcp.mount(app)
    problems.install(app)
    links.install(app)
    observability.install(app)
    return app
