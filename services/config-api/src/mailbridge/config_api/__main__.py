"""``python -m mailbridge.config_api``: serve the HTTP gateway until SIGTERM."""

from __future__ import annotations

import uvicorn

from mailbridge.config_api.app import create_app
from mailbridge.config_api.bootstrap import SERVICE, build_container
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared.runtime import setup_telemetry


def main() -> None:
    settings = ConfigApiSettings()  # required values come from the environment
    provider = setup_telemetry(SERVICE, settings)
    app = create_app(lambda: build_container(settings, provider), provider)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
