"""The FastAPI application: routes, problem+json errors, and the container's lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from mailbridge.config_api.bootstrap import Container
from mailbridge.config_api.entrypoints import health, http, observability, orgs, problems

DESCRIPTION = """
The HTTP gateway of mailbridge: register agents, save their email configuration (secrets are
write-only), run connection tests through a mail-worker, and follow the mailbox status; share OAuth
apps across an org and restrict what its client organizations' agents may send.
Errors are `application/problem+json` with a stable `code` and a fix-it `hint`.
"""


def create_app(
    make_container: Callable[[], Awaitable[Container]], provider: TracerProvider | None = None
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await make_container()
        await container.start()
        app.state.container = container
        try:
            yield
        finally:
            await container.stop()

    app = FastAPI(
        title="mailbridge config-api",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry=observability.telemetry_config(provider),
    )
    app.include_router(http.router)
    app.include_router(orgs.router)
    app.include_router(health.router)
    problems.install(app)
    observability.install(app)
    return app
