"""``python -m mailbridge.config_api``: serve the HTTP gateway until SIGTERM, or run an operator
command (``keys create|list|revoke|rotate-secrets``)."""

from __future__ import annotations

import asyncio
import math
import sys

import uvicorn

from mailbridge.config_api.app import create_app
from mailbridge.config_api.bootstrap import SERVICE
from mailbridge.config_api.entrypoints import cli
from mailbridge.config_api.entrypoints.observability import hide_queries_in_access_log
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared.runtime import setup_telemetry
from mailbridge.shared.service import load_settings, start


def serve(settings: ConfigApiSettings) -> None:
    """uvicorn serves the app; its lifespan starts and stops the service as ``run`` would."""
    provider = setup_telemetry(SERVICE.name, settings)
    hide_queries_in_access_log()
    app = create_app(lambda: start(SERVICE, settings, provider), provider)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=math.ceil(settings.drain_seconds) or None,  # requests finish
    )


def main() -> None:
    settings = load_settings(ConfigApiSettings, SERVICE.name)
    if len(sys.argv) > 1:
        sys.exit(asyncio.run(cli.run(sys.argv[1:], settings)))
    serve(settings)


if __name__ == "__main__":
    main()
