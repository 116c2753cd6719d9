"""``python -m mailbridge.config_api``: serve the HTTP gateway until SIGTERM, or run an operator
command (``keys create|list|revoke|rotate-secrets``)."""

from __future__ import annotations

import asyncio
import sys

import uvicorn
from pydantic import ValidationError

from mailbridge.config_api.app import create_app
from mailbridge.config_api.bootstrap import SERVICE, build_container
from mailbridge.config_api.entrypoints import cli
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared.runtime import setup_telemetry


def serve(settings: ConfigApiSettings) -> None:
    provider = setup_telemetry(SERVICE, settings)
    app = create_app(lambda: build_container(settings, provider), provider)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=10,
    )


def load_settings() -> ConfigApiSettings:
    try:
        return ConfigApiSettings()  # required values come from the environment
    except ValidationError as exc:
        missing = ", ".join("MAILBRIDGE_" + str(e["loc"][0]).upper() for e in exc.errors())
        sys.exit(f"config-api cannot start: set {missing} (no sealing key, no start)")


def main() -> None:
    settings = load_settings()
    if len(sys.argv) > 1:
        sys.exit(asyncio.run(cli.run(sys.argv[1:], settings)))
    serve(settings)


if __name__ == "__main__":
    main()
